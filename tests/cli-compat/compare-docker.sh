#!/usr/bin/env bash
# Compares agentctl's commands and `run` flags with docker's (the lists beside this script,
# taken from the docker CLI) and prints each docker name that agentctl neither offers nor
# omits deliberately (omissions.txt, with the reason for each). Exit 1 if there is one;
# with --report, prints the gap and exits 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ctl=${AGENTCTL:-$here/../../target/debug/agentctl}
names() { grep -v '^#' "$1" | awk 'NF {print $1}' | sort -u; }
omitted=$(names "$here/omissions.txt")
# Offered: listed in `agentctl --help`, or accepted as docker spells it (`container ls`,
# `load`, `import`: rewritten to agentctl's own forms, ctl/src/aliases.rs).
ours_cmds=$( { "$ctl" --help | awk '/^Commands:/{f=1;next} /^$/{f=0} f{print $1}'
  for c in $(names "$here/docker-commands.txt"); do "$ctl" "$c" --help >/dev/null 2>&1 && echo "$c"; done; } | sort -u)
ours_run=$("$ctl" run --help | grep -oE -- '--[a-z0-9-]+' | sort -u)
missing=$(comm -23 <(names "$here/docker-commands.txt") <(printf '%s\n' $ours_cmds $omitted | sort -u))
missing_flags=$(comm -23 <(names "$here/docker-run-flags.txt") <(printf '%s\n' $ours_run $omitted | sort -u))
total_cmds=$(names "$here/docker-commands.txt" | wc -l)
total_flags=$(names "$here/docker-run-flags.txt" | wc -l)
echo "commands: $(comm -12 <(names "$here/docker-commands.txt") <(printf '%s\n' $ours_cmds | sort -u) | wc -l) of docker's $total_cmds offered, $(echo "$omitted" | grep -cv -- '^--') omitted deliberately"
echo "run flags: $(comm -12 <(names "$here/docker-run-flags.txt") <(printf '%s\n' $ours_run | sort -u) | wc -l) of docker's $total_flags offered"
status=0
if [ -n "$missing" ]; then echo "missing commands: $(echo $missing)"; status=1; fi
if [ -n "$missing_flags" ]; then echo "missing run flags: $(echo $missing_flags)"; status=1; fi
[ "${1:-}" = --report ] && exit 0
exit $status
