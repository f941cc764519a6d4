#!/usr/bin/env bash
# Runs seal's whole test suite on a fresh Debian 12 machine, installing what
# the tests need first (as root: Debian packages and an ordinary user for the
# rootless tests). CI runs exactly this script (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests use from Debian: busybox-static builds the test images.
packages=(busybox-static)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: missing packages: ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The rootless tests run seal as an ordinary user; make one where none exists.
if [[ $(id -u) -eq 0 ]] && ! id seal-tester >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin seal-tester
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"
