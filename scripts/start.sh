#!/usr/bin/env bash
# Sets up this machine (Debian 12, root), builds node-agent, starts agentd in the background
# with a ready-to-use image built from the host's busybox, and runs a first container.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "start.sh: run as root (agentd creates namespaces, cgroups and mounts)" >&2; exit 1; fi
if [ ! -x /bin/busybox ] || ! /bin/busybox --list-full >/dev/null 2>&1; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static
fi
cargo build --release --workspace
install -m 0755 target/release/agentd target/release/agentctl /usr/local/bin/
if ! agentctl version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup agentd >/var/log/agentd.log 2>&1 &
  for _ in $(seq 100); do agentctl version >/dev/null 2>&1 && break; sleep 0.1; done
fi
agentctl image busybox
agentctl run --rm local/busybox sh -c 'echo "hello from container $(hostname): I am PID $$ in my own namespaces"'
echo
echo "agentd is running (log: /var/log/agentd.log, socket: /run/agentd/agentd.sock). Try:"
echo "  agentctl run -d --name web local/busybox sleep 1000 && agentctl ps && agentctl exec -it web sh"
