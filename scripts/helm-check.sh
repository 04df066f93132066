#!/usr/bin/env bash
# Checks the Helm chart offline: `helm lint --strict`, every rendering validated against the
# Kubernetes 1.31 schemas (kubernetes-validate), and the agentd.toml it renders accepted by
# agentd itself (--check-config). Tools come from ../shared/tools/k8s-tools.sh (package
# registries only) into $K8S_TOOLS (default target/k8s-tools); skipped with a reason when
# they cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${K8S_TOOLS:-$PWD/target/k8s-tools}
SETUP=../shared/tools/k8s-tools.sh
if [ ! -x "$T/bin/helm" ] || [ ! -x "$T/bin/kubernetes-validate" ]; then
  if [ ! -f "$SETUP" ] || ! bash "$SETUP" "$T" >/dev/null 2>&1; then
    echo "SKIP helm-check: could not install helm/kubernetes-validate ($SETUP)"; exit 0
  fi
fi
export PATH="$T/bin:$PATH"
CHART=helm/node-agent
AGENTD=${AGENTD:-target/debug/agentd}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
helm lint --strict "$CHART"
render() { # name, then --set flags
  local name=$1; shift
  helm template x "$CHART" --kube-version 1.31.0 "$@" > "$W/$name.yaml"
  kubernetes-validate --strict -k 1.31.0 "$W/$name.yaml" >/dev/null
  "$T/bin/python" - "$W/$name.yaml" "$W/$name.toml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = [d for d in docs if d["kind"] == "ConfigMap"][0]
open(sys.argv[2], "w").write(cm["data"]["agentd.toml"])
PY
  "$AGENTD" --config "$W/$name.toml" --check-config
}
render default
render remote --set remote.enabled=true --set remote.tlsSecret=agentd-tls \
  --set 'roles.CN\=scheduler=admin' --set userns.default=auto \
  --set-string 'extraConfig=[capacity]
overcommit = 1.5'
render metrics --set metrics.enabled=true
render metrics-tls --set metrics.enabled=true --set metrics.address=0.0.0.0 \
  --set remote.enabled=true --set remote.tlsSecret=agentd-tls
render cni --set cni.enabled=true --set cni.binDir=/usr/lib/cni
# The CNI directories reach agentd's config and are mounted read-only from the node.
grep -q 'cni_conf_dir = "/etc/cni/net.d"' "$W/cni.toml" && grep -q 'cni_bin_dir = "/usr/lib/cni"' "$W/cni.toml"
"$T/bin/python" - "$W/cni.yaml" <<'PY'
import sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]
mounts = {m["name"]: m for m in ds["containers"][0]["volumeMounts"]}
vols = {v["name"]: v for v in ds["volumes"]}
for name, path in [("cni-conf", "/etc/cni/net.d"), ("cni-bin", "/usr/lib/cni")]:
    assert mounts[name]["mountPath"] == path and mounts[name]["readOnly"], mounts[name]
    assert vols[name]["hostPath"]["path"] == path, vols[name]
PY
if grep -q cni_conf_dir "$W/default.toml"; then
  echo "helm-check: the default rendering configures CNI" >&2; exit 1
fi
# A remote listener without its TLS secret is refused at render time, naming the fix.
if helm template x "$CHART" --set remote.enabled=true >"$W/bad.out" 2>&1; then
  echo "helm-check: remote.enabled without remote.tlsSecret rendered" >&2; exit 1
fi
grep -q "remote.enabled needs remote.tlsSecret" "$W/bad.out"
echo "helm-check: ok"
