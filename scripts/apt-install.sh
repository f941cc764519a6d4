#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing.
# As root it installs them; as another user it names them and fails, or with
# --optional (first argument) only names them and succeeds.
#
#   scripts/apt-install.sh busybox-static
#   scripts/apt-install.sh --optional crun runc
set -euo pipefail

optional=false
if [[ ${1:-} == --optional ]]; then
    optional=true
    shift
fi
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
    if $optional; then
        echo "note: not installed (run as root to install): ${missing[*]}" >&2
        exit 0
    fi
    echo "error: missing packages: ${missing[*]};" \
        "as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
