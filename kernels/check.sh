#!/usr/bin/env bash
# Every check for the kernel images, in the order a change is usually broken:
# formatting, lints (kernel target and host tests), host unit tests of the
# parsers, then boots in QEMU with 2 and 4 CPUs.
#   kernels/check.sh            all of it
#   kernels/check.sh --no-qemu  skip the boots (no qemu-system-x86_64 needed)
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt --check
cargo clippy --release -- -D warnings
cargo clippy-host
cargo test-host
if [[ "${1:-}" != "--no-qemu" ]]; then
    ./run.sh 2
    ./run.sh 4
fi
echo "kernels/check.sh: all checks passed"
