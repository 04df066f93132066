#!/usr/bin/env bash
# Runs every fuzz target (cargo fuzz, libFuzzer) for a bounded time on the checked-in seed
# corpus. New inputs go to a scratch copy, so the checked-in corpus does not change; a crash
# leaves its input in fuzz/artifacts/<target>/ and fails the run.
#   FUZZ_SECONDS  time per target (default 15)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-15}"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz.sh: skipped: no nightly toolchain (cargo fuzz needs one)" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install --locked cargo-fuzz
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
targets=(reference port_spec sysctl dockerfile config unpack spdy)
cargo +nightly fuzz build --dev --sanitizer none 2>&1 | tail -n 2
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "fuzz: $t for ${secs}s"
  if ! cargo +nightly fuzz run --dev --sanitizer none "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$scratch/$t.log" 2>&1; then
    tail -n 40 "$scratch/$t.log"
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "$scratch/$t.log" | tr '\n' ' '
  echo
done
