#!/bin/sh
# Make this machine ready to run the genomics example, from nothing but
# Debian bookworm's package mirror: host tools (as root), the tool images'
# root file systems (images/build.sh; cached, so a second call is instant),
# and, when a seal binary is given, their import into seal's store.
#
#   examples/genomics/setup.sh            install (root only) and build images
#   SEAL=path/to/seal examples/genomics/setup.sh   ... and import them into seal
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -eq 0 ]; then
    sh "$here/scripts/install-host-tools.sh"
elif ! command -v dpkg-deb >/dev/null || ! command -v apt-get >/dev/null; then
    echo "setup: needs apt-get and dpkg-deb; run scripts/install-host-tools.sh as root" >&2
    exit 1
fi
sh "$here/images/build.sh"
if [ -n "${SEAL:-}" ]; then
    sh "$here/images/import.sh"
fi
