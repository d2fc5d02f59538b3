#!/usr/bin/env bash
# Run every fuzz target (fuzz/fuzz_targets) with cargo-fuzz, starting from the
# committed corpus (fuzz/corpus/TARGET).
#
#   scripts/fuzz.sh SECONDS          each target for SECONDS (what CI does: 20)
#   scripts/fuzz.sh --runs N         each target for N executions (the long runs
#                                    reported in docs/RELIABILITY.md), new inputs
#                                    kept in the corpus
#
# libFuzzer needs a nightly toolchain; where `rustup toolchain list` shows none,
# this says so and exits 0: tests/fuzz_corpus.rs replays the corpus on stable in
# every test run anyway. A crash fails the script and leaves its input in
# fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(frames request batch records segment)
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain here; the corpus replay in tests/fuzz_corpus.rs stands in"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

mode=time
limit=${1:-20}
if [ "${1:-}" = "--runs" ]; then
  mode=runs
  limit=${2:?--runs needs a count}
fi

cd fuzz
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  if [ "$mode" = time ]; then
    # New inputs go to a scratch directory: a short run leaves the tree as it was.
    scratch=$(mktemp -d)
    echo "== fuzz $t for ${limit}s"
    status=0
    cargo +nightly fuzz run -O "$t" "$scratch" "corpus/$t" -- -max_total_time="$limit" -print_final_stats=1 \
      >"$scratch.log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|SUMMARY)' "$scratch.log" || true
    if [ "$status" -ne 0 ]; then
      tail -40 "$scratch.log"
      echo "fuzz: $t failed (exit $status); the input is in fuzz/artifacts/$t/"
      exit 1
    fi
    rm -rf "$scratch" "$scratch.log"
  else
    echo "== fuzz $t for $limit executions"
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- -runs="$limit" -print_final_stats=1
    cargo +nightly fuzz cmin -O "$t" "corpus/$t"
  fi
done
