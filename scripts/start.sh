#!/usr/bin/env bash
# Sets up this machine (Debian 12, root), builds node-agent, starts agentd in the background
# with a ready-to-use image built from the host's busybox, and runs a first container on the
# default network (bridge).
#
# Optional environment (the defaults are agentd's own): AGENTD_ROOT, AGENTD_RUN_DIR,
# AGENTD_INSTANCE, AGENTD_CONFIG, AGENTD_LOG (default /var/log/agentd.log), and BIN_DIR: use the
# agentd/agentctl already built there instead of building and installing a release. The
# end-to-end suite runs this script that way in an instance of its own (tests/tests/interop.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "start.sh: run as root (agentd creates namespaces, cgroups and mounts)" >&2; exit 1; fi

# What the default run needs from the host: busybox for the image, nft for the bridge
# network's firewall (agentd makes links itself over rtnetlink; iproute2's `ip` is for
# looking at them; procps's `ps` is what `agentctl top` runs).
need=()
for p in busybox-static nftables iproute2 procps; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "start.sh: installing ${need[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

if [ -n "${BIN_DIR:-}" ]; then
  AGENTD="$BIN_DIR/agentd"; AGENTCTL="$BIN_DIR/agentctl"
else
  cargo build --release --workspace
  install -m 0755 target/release/agentd target/release/agent-shim target/release/agentctl /usr/local/bin/
  AGENTD=/usr/local/bin/agentd; AGENTCTL=/usr/local/bin/agentctl
fi

args=()
[ -n "${AGENTD_ROOT:-}" ] && args+=(--root "$AGENTD_ROOT")
[ -n "${AGENTD_INSTANCE:-}" ] && args+=(--instance "$AGENTD_INSTANCE")
[ -n "${AGENTD_CONFIG:-}" ] && args+=(--config "$AGENTD_CONFIG")
RUN_DIR=${AGENTD_RUN_DIR:-/run/agentd}
args+=(--run-dir "$RUN_DIR")
LOG=${AGENTD_LOG:-/var/log/agentd.log}
export AGENT_HOST="unix://$RUN_DIR/agentd.sock"

if ! "$AGENTCTL" version >/dev/null 2>&1; then
  mkdir -p "$(dirname "$LOG")" "$RUN_DIR"
  nohup "$AGENTD" "${args[@]}" >>"$LOG" 2>&1 &
  echo $! > "$RUN_DIR/agentd.pid"
  for _ in $(seq 200); do "$AGENTCTL" version >/dev/null 2>&1 && break; sleep 0.1; done
  if ! "$AGENTCTL" version >/dev/null 2>&1; then
    echo "start.sh: agentd did not come up; the end of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
fi
"$AGENTCTL" image busybox
"$AGENTCTL" run --rm local/busybox sh -c 'echo "hello from container $(hostname): I am PID $$ in my own namespaces, address $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
echo
echo "agentd is running (log: $LOG, socket: $RUN_DIR/agentd.sock, pid file: $RUN_DIR/agentd.pid). Try:"
echo "  agentctl run -d --name web local/busybox sleep 1000 && agentctl ps && agentctl exec -it web sh"
