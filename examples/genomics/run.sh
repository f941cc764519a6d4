#!/bin/sh
# The genomics example from nothing to a checked result, in one command from
# the repository root:
#
#   examples/genomics/run.sh [seal run options, e.g. --cores 2]
#
#  1. installs what is missing from Debian (as root; as an ordinary user it
#     names what is missing and stops): a Rust tool chain new enough for seal
#     (cargo-web), a C compiler, CA certificates;
#  2. builds seal (cargo build --release);
#  3. builds the eight tool images from pinned Debian packages and imports
#     them into seal's store: only the first time, or after a recipe or lock
#     changed (images/build.sh and images/import.sh keep both steps cached);
#  4. checks that every imported image has the digest pipeline.lock pins;
#  5. runs the pipeline and prints the summary table and where the results
#     and the provenance are.
#
# Environment: OUT, the output directory (default seal-out/adna-mini);
# SEAL_HOME, seal's image store (default: seal's own); SEAL_GENOMICS_BUILD and
# SEAL_GENOMICS_CACHE, see images/build.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${OUT:-seal-out/adna-mini}
seal=${CARGO_TARGET_DIR:-$repo/target}/release/seal
# seal's Cargo.toml asks for Rust 1.88 or newer.
rust_minor=88

say() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: error: $*" >&2; exit 1; }
now() { date +%s; }
started=$(now)
elapsed() { echo "$(($(now) - started)) s"; }

cargo_ok() {
    command -v cargo >/dev/null || return 1
    minor=$(cargo --version | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')
    [ -n "$minor" ] && [ "$minor" -ge "$rust_minor" ]
}

# The Debian packages missing on this machine, one per missing tool.
missing_packages() {
    cargo_ok || echo cargo-web
    command -v cc >/dev/null || echo gcc
    [ -f /usr/include/stdio.h ] || echo libc6-dev
    [ -f /etc/ssl/certs/ca-certificates.crt ] || echo ca-certificates
    command -v dpkg-deb >/dev/null || echo dpkg
    command -v apt-get >/dev/null || echo apt
    command -v unshare >/dev/null || echo util-linux
    tar --version 2>/dev/null | grep -q 'GNU tar' || echo tar
    command -v sha256sum >/dev/null || echo coreutils
}

install_missing() {
    missing=$(missing_packages | tr '\n' ' ' | sed 's/ $//')
    [ -n "$missing" ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        if ! cargo_ok && command -v cargo >/dev/null; then
            say "cargo $(cargo --version | cut -d' ' -f2) is too old; seal needs 1.$rust_minor"
        fi
        die "missing: $missing
  install them as root: apt-get update && apt-get install --no-install-recommends $missing
  (cargo-web is Debian 12's current Rust tool chain), then run this again"
    fi
    if command -v cargo >/dev/null && ! cargo_ok; then
        die "cargo $(cargo --version | cut -d' ' -f2) on PATH is older than 1.$rust_minor;
  remove it (apt-get remove cargo rustc) so that cargo-web's can be installed, or put a
  newer cargo first on PATH"
    fi
    say "installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    cargo_ok || die "cargo is still missing or older than 1.$rust_minor after installing"
}

userns_ok() {
    unshare --user --map-root-user true 2>/dev/null \
        || die "this user cannot create user namespaces, which seal's runtime and the image
  build need; on Debian: sysctl kernel.unprivileged_userns_clone=1 (as root)"
}

build_seal() {
    say "building seal (cargo build --release)"
    (cd "$repo" && cargo build --release --locked --quiet) || die "cargo build failed"
}

build_images() {
    say "building the tool images (cached after the first time)"
    sh "$here/images/build.sh"
    say "importing them into seal's store"
    SEAL=$seal sh "$here/images/import.sh" > "$tmp/imported"
}

# Every imported NAME@DIGEST must be the one pipeline.lock pins.
check_digests() {
    lock=$here/pipeline.lock
    [ -f "$lock" ] || die "$lock is missing"
    bad=0
    while read -r ref; do
        if ! grep -qF "\"pinned\": \"$ref\"" "$lock"; then
            name=${ref%@*}
            pinned=$(grep -o "\"pinned\": \"$name@sha256:[0-9a-f]*\"" "$lock" \
                | sed 's/.*@//; s/"$//')
            say "$name: built here as ${ref#*@}, but pipeline.lock pins ${pinned:-nothing}"
            bad=1
        fi
    done < "$tmp/imported"
    [ "$bad" -eq 0 ] || die "the images built here differ from the ones pipeline.lock pins.
  The builds are deterministic and build.sh checks every .deb's sha256, so
  either images/ was edited (a recipe, a lock.txt or build.sh: if on purpose,
  re-pin with $seal lock examples/genomics/pipeline.yaml) or this seal's
  'image import' writes images differently from the one that made the lock.
  Nothing was run."
    say "all $(wc -l < "$tmp/imported") images match pipeline.lock"
}

# The summary table, one row per figure and one column per sample.
show_summary() {
    awk -F '\t' '{ for (i = 1; i <= NF; i++) cell[NR, i] = $i; if (NF > n) n = NF }
        END { for (i = 1; i <= n; i++) {
                  printf "  %-20s", cell[1, i]
                  for (r = 2; r <= NR; r++) printf " %12s", cell[r, i]
                  printf "\n" } }' "$1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

install_missing
userns_ok
build_seal
say "seal built ($(elapsed))"
build_images
say "images ready ($(elapsed))"
check_digests
say "running the pipeline: $seal run examples/genomics/pipeline.yaml --out $out $*"
run_started=$(now)
status=0
"$seal" run "$here/pipeline.yaml" --out "$out" "$@" || status=$?
say "seal run took $(($(now) - run_started)) s; $(elapsed) in all"
[ "$status" -eq 0 ] || die "seal run failed (exit $status); its report above names the step"
echo
echo "Summary (also in $out/results/summary.tsv):"
show_summary "$out/results/summary.tsv"
echo
echo "results:    $out/results/"
echo "provenance: $out/provenance.json"
echo "step logs:  $out/work/<step>.<sample>/std{out,err}.log"
