#!/bin/sh
# Import the roots built by images/build.sh into seal's image store, tagged
# as pipeline.yaml names them (seal-examples/TOOL:VERSION, VERSION from the
# recipe). `seal lock` then pins each tag to its digest.
#
#   images/import.sh [TOOL...]     (default: every non-optional recipe)
# SEAL names the seal binary (default: seal on PATH).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${SEAL_GENOMICS_BUILD:-$here/build}
seal=${SEAL:-seal}

tools=${*:-$(for r in "$here"/*/recipe; do
    grep -q '^OPTIONAL=yes' "$r" || basename "$(dirname "$r")"; done)}
for tool in $tools; do
    version=$(sed -n 's/^VERSION=//p' "$here/$tool/recipe")
    if [ ! -d "$build/$tool/rootfs" ]; then
        echo "import.sh: $tool is not built: run images/build.sh $tool" >&2
        exit 1
    fi
    "$seal" image import "$build/$tool/rootfs" --tag "seal-examples/$tool:$version"
done
