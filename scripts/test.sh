#!/usr/bin/env bash
# Installs what the tests need on a fresh machine and runs every test (unit tests without
# root; end-to-end tests against the real kernel when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in busybox-static skopeo umoci nftables iproute2 python3 docker-registry unzip; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    # The tests start their own registries on free loopback ports; the package's own service
    # (if its install started one) is not ours to keep running.
    if [[ " ${need[*]} " == *" docker-registry "* ]]; then
      systemctl stop docker-registry 2>/dev/null || pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' || true
    fi
  else
    echo "test.sh: not root, cannot install ${need[*]}; privileged tests will skip" >&2
  fi
fi
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads="${TEST_THREADS:-4}"
# Fuzz every target briefly on its seed corpus (skipped without a nightly toolchain).
scripts/fuzz.sh
# The Helm chart: lint, schema-validate every rendering, agentd accepts its config.
scripts/helm-check.sh
