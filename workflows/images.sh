#!/bin/sh
# Builds the busybox image that the pipelines in workflows/ use, from this
# machine's static busybox, imports it into seal's store and pins it in each
# pipeline's lock file. Run it once after building seal.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
seal=${SEAL:-seal}
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ]; then
    echo "error: $busybox not found; install it (Debian: apt-get install busybox-static)" >&2
    exit 1
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp" "$rootfs/work"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"

"$seal" image import "$rootfs" --tag seal/busybox:1.35
for pipeline in "$here"/*.yaml; do
    "$seal" lock "$pipeline"
done
