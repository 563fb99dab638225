#!/usr/bin/env bash
# The README's test command: start the services, then format check, lints
# and every test. Builds once (clippy and nextest share the debug profile).
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash dev/services.sh)"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
