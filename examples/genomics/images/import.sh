#!/bin/sh
# Import the roots built by images/build.sh into seal's image store, tagged
# as pipeline.yaml names them (seal-examples/TOOL:VERSION, VERSION from the
# recipe), and print each NAME@sha256:DIGEST. `seal lock` pins each tag to
# its digest; run.sh compares the printed digests with pipeline.lock.
#
#   images/import.sh [TOOL...]     (default: every non-optional recipe)
#
# An import is skipped when the store still holds the image this build of
# TOOL gave last time (build/TOOL/imported records the build's key and the
# reference), so a second call costs no hashing.
# SEAL names the seal binary (default: seal on PATH); SEAL_HOME its store.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${SEAL_GENOMICS_BUILD:-$here/build}
seal=${SEAL:-seal}

tools=${*:-$(for r in "$here"/*/recipe; do
    grep -q '^OPTIONAL=yes' "$r" || basename "$(dirname "$r")"; done)}
stored=$("$seal" image ls | cut -f1)
for tool in $tools; do
    version=$(sed -n 's/^VERSION=//p' "$here/$tool/recipe")
    if [ ! -d "$build/$tool/rootfs" ] || [ ! -f "$build/$tool/key" ]; then
        echo "import.sh: $tool is not built: run images/build.sh $tool" >&2
        exit 1
    fi
    # The build's key and the tar it wrote: a rebuild (even a forced one of
    # the same recipe) that gives another tree is imported again.
    key="$(cat "$build/$tool/key"):$(cut -d' ' -f1 "$build/$tool/$tool.tar.sha256")"
    stamp=$build/$tool/imported
    if [ -f "$stamp" ] && [ "$(cut -f1 "$stamp")" = "$key" ]; then
        ref=$(cut -f2 "$stamp")
        if echo "$stored" | grep -qxF "$ref"; then
            echo "import.sh: $tool: already in the store" >&2
            echo "$ref"
            continue
        fi
    fi
    ref=$("$seal" image import "$build/$tool/rootfs" --tag "seal-examples/$tool:$version")
    printf '%s\t%s\n' "$key" "$ref" > "$stamp"
    echo "$ref"
done
