#!/usr/bin/env bash
# Runs Berth's fuzz targets for longer than CI does, on stable Rust.
#
#   scripts/fuzz.sh [SECONDS]        # default 600; e.g. scripts/fuzz.sh 3600
#
# The targets are proptest properties over hostile input (the YAML reader
# with the manifest pipeline behind it, the label-selector parser, the API's
# request decoding, and any other crate's `fuzz_*` tests). In every
# `cargo test` they run a few hundred cases each; here each `fuzz_*` test
# (marked #[ignore]) keeps drawing new cases, with fresh seeds, for
# BERTH_FUZZ_SECONDS seconds in a release build. A failure prints the
# shrunk input and the seed that found it, and this script exits non-zero.
#
# One crate only:   scripts/fuzz.sh 600 berth-manifest
# By hand:          BERTH_FUZZ_SECONDS=600 cargo test --release -p berth-manifest fuzz_ -- --ignored --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
only=${2:-}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] [CRATE]" >&2; exit 2; }

# Every crate with a fuzz_ test, found by its source.
crates=()
for dir in crates/*/; do
  crate=$(basename "$dir")
  [[ -z $only || $crate == "$only" ]] || continue
  if grep -rqs --include='*.rs' -E '^\s*(pub\s+)?fn fuzz_' "$dir"; then
    crates+=("$crate")
  fi
done
[[ ${#crates[@]} -gt 0 ]] || { echo "scripts/fuzz.sh: no fuzz_ tests found${only:+ in $only}" >&2; exit 2; }

failed=()
for crate in "${crates[@]}"; do
  echo "== $crate: fuzz_* for $seconds s per test binary"
  if ! BERTH_FUZZ_SECONDS=$seconds cargo test --release --locked -p "$crate" fuzz_ -- --ignored --nocapture; then
    failed+=("$crate")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "scripts/fuzz.sh: failures in ${failed[*]}" >&2
  exit 1
fi
echo "scripts/fuzz.sh: ${crates[*]}: no failures in $seconds s each"
