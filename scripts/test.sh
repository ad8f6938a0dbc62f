#!/usr/bin/env bash
# Runs Berth's whole test suite: formatting, lints, unit tests, and the
# privileged integration and system tests (real runc, registry, mounts).
# Needs root. CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/test.sh: the integration tests need root (mounts, device nodes, a real registry); run it as root" >&2
  exit 2
fi

bash scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked
