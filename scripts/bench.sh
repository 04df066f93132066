#!/usr/bin/env bash
# Start-up benchmark (release build, root): `agentctl run --rm IMAGE /bin/true`, whole
# process, median of N runs, side by side with a bare unshare+chroot of the same rootfs and
# the client's own round trip (`agentctl version`). Uses its own agent instance; cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine; }
cargo build --release --workspace -q
B=$PWD/target/release
T=$(mktemp -d /tmp/agent-bench.XXXXXX)
echo "agentd-bench:5000000:65536" > "$T/subuid"; cp "$T/subuid" "$T/subgid"
printf '[network]\nbridge_subnet = "10.87.0.0/24"\n[userns]\nuser = "agentd-bench"\nsubuid = "%s"\nsubgid = "%s"\n' \
  "$T/subuid" "$T/subgid" > "$T/agentd.toml"
"$B/agentd" --root "$T/root" --run-dir "$T/run" --instance bench --config "$T/agentd.toml" >"$T/agentd.log" 2>&1 &
AGENTD=$!
cleanup() {
  AGENT_HOST=unix://$T/run/agentd.sock "$B/agentctl" ps -aq 2>/dev/null | xargs -r env AGENT_HOST=unix://$T/run/agentd.sock "$B/agentctl" rm -f >/dev/null 2>&1 || true
  kill "$AGENTD" 2>/dev/null; wait "$AGENTD" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
export AGENT_HOST=unix://$T/run/agentd.sock
for _ in $(seq 100); do "$B/agentctl" version >/dev/null 2>&1 && break; sleep 0.05; done
"$B/agentctl" image busybox >/dev/null
ROOTFS=$(ls -d "$T"/root/layers/*/fs | head -1)
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$T/bench.json" \
  -n "agentctl run --rm --network none /bin/true" "$B/agentctl run --rm --network none local/busybox /bin/true" \
  -n "agentctl run --rm --network none --userns remap /bin/true" "$B/agentctl run --rm --network none --userns remap local/busybox /bin/true" \
  -n "agentctl run --rm /bin/true (default: bridge)" "$B/agentctl run --rm local/busybox /bin/true" \
  -n "agentctl run --rm -p 18080:80 /bin/true (bridge + a published port)" "$B/agentctl run --rm -p 127.0.0.1:18080:80 local/busybox /bin/true" \
  -n "agentctl version (client round trip)" "$B/agentctl version" \
  -n "unshare+chroot /bin/true" "unshare --mount --pid --fork --uts --ipc --net chroot $ROOTFS /bin/true"
python3 - "$T/bench.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"median {r['median']*1000:7.2f} ms  {r['command']}")
PY
