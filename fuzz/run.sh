#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and reports how many inputs it executed.
# A crash stops the run with libFuzzer's report; the input is saved under fuzz/artifacts/TARGET/
# (turn it into a regression test). The corpora grow in fuzz/corpus/ from run to run, starting
# from the checked-in seeds in fuzz/seeds/TARGET/ where there are some.
#
# cargo-fuzz passes nightly-only -Z flags (the sanitizer); the machine's stable rustc accepts
# them with RUSTC_BOOTSTRAP=1, so no nightly toolchain is needed.
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
mkdir -p target
for target in $(cargo fuzz list); do
  log="target/fuzz-$target.log"
  corpora=("corpus/$target")
  mkdir -p "corpus/$target"
  if [ -d "seeds/$target" ]; then corpora+=("seeds/$target"); fi
  if cargo fuzz run -O "$target" "${corpora[@]}" -- -max_total_time="$seconds" >"$log" 2>&1; then
    echo "fuzz $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log")"
  else
    tail -40 "$log"
    echo "fuzz $target: FAILED (the input is in fuzz/artifacts/$target/)"
    exit 1
  fi
done
