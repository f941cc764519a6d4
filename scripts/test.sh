#!/usr/bin/env bash
# Runs seal's whole test suite on a fresh Debian 12 machine, installing what
# the tests need first (as root: Debian packages and an ordinary user for the
# rootless tests). CI runs exactly this script (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests use from Debian: busybox-static builds the test images.
scripts/apt-install.sh busybox-static

# The rootless tests run seal as an ordinary user; make one where none exists.
if [[ $(id -u) -eq 0 ]] && ! id seal-tester >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin seal-tester
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"
