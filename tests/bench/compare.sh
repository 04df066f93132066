#!/usr/bin/env bash
# Start latency of `/bin/true`, ours side by side with the peers installed on this machine
# (release build, root). One hyperfine session, commands alternated run by run is not
# something hyperfine does; instead every command is measured in ROUNDS rounds of RUNS runs,
# the rounds interleaved (ours, peer, ours, peer…), and the median of all samples reported,
# with the ratio ours / theirs.
#
#   tests/bench/compare.sh [--install]   (--install: apt-get install docker.io containerd runc crun podman)
#
# Every daemon it starts (dockerd, containerd) runs with its own root, state and socket in
# a temporary directory and is stopped by PID; dockerd runs with --iptables=false
# --ip-forward=false --ip-masq=false so the host's firewall and forwarding are untouched;
# podman runs with --network none only (its bridge would add firewall rules), with runc. crun 1.8
# refuses the hybrid cgroup layout, so it runs in a private mount namespace without the
# cgroup2 mount at /sys/fs/cgroup/unified.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-3}
[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root" >&2; exit 1; }
if [ "${1:-}" = --install ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io containerd runc crun podman hyperfine
fi
command -v hyperfine >/dev/null || { echo "compare.sh: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release -q -p agent -p ctl
B=$PWD/target/release
T=$(mktemp -d /tmp/agent-compare.XXXXXX)
PIDS=()
cleanup() {
  set +e
  if [ -S "$T/run/agentd.sock" ]; then
    AGENT_HOST=unix://$T/run/agentd.sock "$B/agentctl" ps -aq 2>/dev/null | xargs -r env AGENT_HOST=unix://$T/run/agentd.sock "$B/agentctl" rm -f >/dev/null 2>&1
  fi
  if [ -S "$T/docker.sock" ]; then
    docker -H "unix://$T/docker.sock" ps -aq 2>/dev/null | xargs -r docker -H "unix://$T/docker.sock" rm -f >/dev/null 2>&1
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # dockerd leaves its bridge behind; ours removes its own.
  ip link del benchdocker0 2>/dev/null
  # The peers' cgroup parents (ctr's namespace `bench`, dockerd's `docker`, podman's
  # `libpod_parent`), empty once their containers are gone, made by this run only if absent before.
  for n in "${CG_NEW[@]}"; do
    for h in /sys/fs/cgroup/*/; do [ -d "$h$n" ] && find "$h$n" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  done
  for m in $(awk -v t="$T" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  rm -rf "$T"
}
CG_NEW=()
for n in bench docker libpod_parent; do [ -d "/sys/fs/cgroup/cpu/$n" ] || CG_NEW+=("$n"); done
trap cleanup EXIT
mkdir -p "$T/bundle"

# --- ours
printf '[network]\nbridge_subnet = "10.86.0.0/24"\n' > "$T/agentd.toml"
"$B/agentd" --root "$T/root" --run-dir "$T/run" --instance benchcmp --config "$T/agentd.toml" >"$T/agentd.log" 2>&1 &
PIDS+=($!)
export AGENT_HOST=unix://$T/run/agentd.sock
for _ in $(seq 200); do "$B/agentctl" version >/dev/null 2>&1 && break; sleep 0.05; done
"$B/agentctl" image busybox >/dev/null
"$B/agentctl" save -o "$T/busybox.oci.tar" local/busybox:latest
ROOTFS=$(ls -d "$T"/root/layers/*/fs | head -1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

NAMES=() CMDS=()
add() { NAMES+=("$1"); CMDS+=("$2"); }
add "floor: unshare --pid --mount --uts --ipc --net + chroot" "unshare --pid --fork --mount --uts --ipc --net chroot $ROOTFS /bin/true"
add "agentctl run --rm --network none" "$B/agentctl run --rm --network none local/busybox /bin/true"
add "agentctl run --rm (bridge)" "$B/agentctl run --rm local/busybox /bin/true"
add "agentctl run --rm -p (bridge + port)" "$B/agentctl run --rm -p 127.0.0.1:$PORT:80 local/busybox /bin/true"

# --- OCI runtimes on a bundle of the same rootfs
if command -v runc >/dev/null || command -v crun >/dev/null; then
  cp -a "$ROOTFS" "$T/bundle/rootfs"
  (cd "$T/bundle" && { command -v runc >/dev/null && runc spec || crun spec; })
  python3 - "$T/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
c["root"]["readonly"] = False
json.dump(c, open(p, "w"))
PY
fi
if command -v runc >/dev/null; then
  add "runc run ($(runc --version | head -1 | awk '{print $3}'))" "runc --root $T/runc run --bundle $T/bundle benchrunc"
fi
if command -v crun >/dev/null; then
  # Measured inside a private mount namespace without the cgroup2 mount (see the header).
  add "crun run ($(crun --version | head -1 | awk '{print $3}'))" "CRUN:crun --root $T/crun run --bundle $T/bundle benchcrun"
fi

# --- containerd
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  mkdir -p "$T/containerd"
  cat > "$T/containerd/config.toml" <<CFG
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/containerd/containerd.sock"
CFG
  containerd --config "$T/containerd/config.toml" >"$T/containerd.log" 2>&1 &
  PIDS+=($!)
  CTR="ctr --address $T/containerd/containerd.sock -n bench"
  for _ in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done
  $CTR images import --base-name local/busybox "$T/busybox.oci.tar" >/dev/null
  IMG=$($CTR images ls -q | head -1)
  add "containerd ctr run --rm ($(containerd --version | awk '{print $3}'))" "$CTR run --rm $IMG benchctr /bin/true"
fi

# --- podman (rootful, its own storage; network none only)
if command -v podman >/dev/null; then
  # podman's default runtime is crun, which refuses the hybrid layout: runc.
  P="podman --root $T/podman/root --runroot $T/podman/run --cgroup-manager cgroupfs --events-backend none --tmpdir $T/podman/tmp --runtime runc"
  mkdir -p "$T/podman/tmp"
  $P load -q -i "$T/busybox.oci.tar" >/dev/null 2>&1 || $P import "$T/busybox.oci.tar" >/dev/null
  PIMG=$($P images -q | head -1)
  add "podman run --rm --network none ($(podman --version | awk '{print $3}'))" "$P run --rm --network none $PIMG /bin/true"
fi

# --- docker (its own daemon, firewall untouched)
if command -v dockerd >/dev/null && command -v docker >/dev/null; then
  ip link add benchdocker0 type bridge 2>/dev/null || true
  ip addr add 10.85.0.1/24 dev benchdocker0 2>/dev/null || true
  ip link set benchdocker0 up
  dockerd --data-root "$T/docker/root" --exec-root "$T/docker/exec" --pidfile "$T/docker.pid" \
    -H "unix://$T/docker.sock" --iptables=false --ip-forward=false --ip-masq=false --bridge benchdocker0 \
    --containerd-namespace benchcmp --containerd-plugins-namespace benchcmp-plugins >"$T/dockerd.log" 2>&1 &
  PIDS+=($!)
  D="docker -H unix://$T/docker.sock"
  for _ in $(seq 200); do $D version >/dev/null 2>&1 && break; sleep 0.1; done
  tar -C "$ROOTFS" -cf - . | $D import - local/busybox >/dev/null
  add "docker run --rm --network none ($($D version -f '{{.Server.Version}}'))" "$D run --rm --network none local/busybox /bin/true"
  add "docker run --rm (bridge)" "$D run --rm local/busybox /bin/true"
fi

# --- measure: ROUNDS rounds, each command RUNS runs per round, in turn
for r in $(seq "$ROUNDS"); do
  for i in "${!CMDS[@]}"; do
    c=${CMDS[$i]}
    if [[ $c == CRUN:* ]]; then
      unshare --mount --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; exec hyperfine -N -w 2 -r $RUNS --export-json $T/r$r-$i.json '${c#CRUN:}'" >/dev/null 2>"$T/r$r-$i.err" || echo "failed: ${NAMES[$i]} ($(tail -1 "$T/r$r-$i.err"))" >&2
    else
      hyperfine -N -w 2 -r "$RUNS" --export-json "$T/r$r-$i.json" "$c" >/dev/null 2>"$T/r$r-$i.err" || echo "failed: ${NAMES[$i]} ($(tail -1 "$T/r$r-$i.err"))" >&2
    fi
  done
done
printf '%s\n' "${NAMES[@]}" > "$T/names"
python3 - "$T" "$ROUNDS" <<'PY'
import json, os, statistics, sys
t, rounds = sys.argv[1], int(sys.argv[2])
names = open(os.path.join(t, "names")).read().splitlines()
med = {}
for i, n in enumerate(names):
    s = []
    for r in range(1, rounds + 1):
        p = os.path.join(t, f"r{r}-{i}.json")
        try:
            s += json.load(open(p))["results"][0]["times"]
        except (OSError, ValueError, KeyError, IndexError):
            pass  # that round failed (reported above)
    if s:
        med[n] = statistics.median(s) * 1000
ours = {k: v for k, v in med.items() if k.startswith("agentctl")}
print("| start → exit of /bin/true | median ms | ours (none) / this |")
print("|---|---|---|")
base = ours.get("agentctl run --rm --network none")
for n in names:
    if n in med:
        ratio = f"{base / med[n]:.2f}" if base else "-"
        print(f"| {n} | {med[n]:.1f} | {ratio} |")
PY
