#!/bin/sh
# Build the genomics example's tool images as root file systems, offline-
# reproducibly, from pinned Debian bookworm packages.
#
#   images/build.sh [TOOL...]            build (default: every TOOL/recipe here
#                                        except those marked OPTIONAL=yes)
#   images/build.sh --relock TOOL...     re-resolve TOOL's packages against the
#                                        mirror and rewrite TOOL/lock.txt
#   images/build.sh --force TOOL...      rebuild even if up to date
#
# For each TOOL (a folder holding `recipe` and `lock.txt`):
#  1. every .deb named in lock.txt is fetched by exact version into the .deb
#     cache (once) and checked against its recorded sha256;
#  2. the .debs are unpacked with `dpkg-deb -x` into a fresh root file system,
#     documentation other than copyright files is dropped, and what the
#     maintainer scripts and `essential` packages would have provided is
#     added: busybox as /bin/sh and the small Unix tools, /etc/passwd and
#     /etc/group with root, /tmp, then the recipe's own `finish` (e.g. the
#     /usr/bin/java alternative link);
#  3. the recipe's smoke test runs in the root (chroot in a user namespace);
#  4. a tar of the root is written with sorted entries, mtime 0 and owner 0,
#     so two builds of the same lock are byte-identical.
# `seal image import build/TOOL/rootfs --tag seal-examples/TOOL:VERSION`
# turns a root into a single-layer OCI image.
#
# A build whose recipe, lock and this script are unchanged is skipped.
# Needs: apt-get (with current package lists), dpkg-deb, GNU tar, sha256sum,
# unshare; scripts/install-host-tools.sh installs them. Locations:
#   SEAL_GENOMICS_CACHE  .deb cache (default ${XDG_CACHE_HOME:-~/.cache}/seal-genomics)
#   SEAL_GENOMICS_BUILD  output (default images/build next to this script)
set -eu
umask 022
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
cache=${SEAL_GENOMICS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seal-genomics}
build=${SEAL_GENOMICS_BUILD:-$here/build}
debs=$cache/debs

die() { echo "build.sh: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Load TOOL/recipe: PACKAGES (resolved with their dependencies), NODEPS
# (taken alone: lets a recipe leave out a dependency it does not need),
# VERSION, SMOKE (a command that must succeed in the root), OPTIONAL (yes:
# built only when named) and finish() (run with ROOT set, after unpacking).
load_recipe() {
    [ -f "$here/$1/recipe" ] || die "no recipe for '$1' (expected $here/$1/recipe)"
    PACKAGES='' NODEPS='' VERSION='' SMOKE='' OPTIONAL=''
    finish() { :; }
    . "$here/$1/recipe"
    [ -n "$PACKAGES$NODEPS" ] || die "$1/recipe names no packages"
}

relock() {
    tool=$1
    load_recipe "$tool"
    [ "$(id -u)" -eq 0 ] || die "--relock needs root (apt-get --download-only)"
    tmp=$(mktemp -d)
    mkdir -p "$tmp/archives/partial"
    : > "$tmp/status"
    say "$tool: resolving $PACKAGES busybox${NODEPS:+ + alone: $NODEPS}"
    # An empty dpkg status makes apt take the whole dependency closure.
    apt-get -q -y --download-only --no-install-recommends \
        -o Dir::State::status="$tmp/status" -o Dir::Cache::archives="$tmp/archives" \
        -o Debug::NoLocking=1 install $PACKAGES busybox >"$tmp/apt.log" 2>&1 \
        || { cat "$tmp/apt.log" >&2; die "$tool: apt-get could not resolve the packages"; }
    if [ -n "$NODEPS" ]; then
        (cd "$tmp/archives" && apt-get -q download $NODEPS >>"$tmp/apt.log" 2>&1) \
            || { cat "$tmp/apt.log" >&2; die "$tool: apt-get download $NODEPS failed"; }
    fi
    {
        echo "# $tool image: every .deb unpacked into the root, Debian bookworm amd64."
        echo "# Written by 'images/build.sh --relock $tool'; edit the recipe, not this file."
        echo "# package version architecture sha256 file"
        for deb in "$tmp"/archives/*.deb; do
            printf '%s %s %s %s %s\n' "$(dpkg-deb -f "$deb" Package)" \
                "$(dpkg-deb -f "$deb" Version)" "$(dpkg-deb -f "$deb" Architecture)" \
                "$(sha256 "$deb")" "$(basename "$deb")"
        done | sort
    } > "$here/$tool/lock.txt"
    mkdir -p "$debs"
    cp -n "$tmp"/archives/*.deb "$debs/" 2>/dev/null || true
    rm -rf "$tmp"
    say "$tool: wrote $tool/lock.txt ($(grep -vc '^#' "$here/$tool/lock.txt") packages)"
}

# Make sure every .deb of TOOL's lock is in the cache with its recorded hash.
# Missing ones are downloaded by exact version in one apt-get call (one call
# per package costs ~1 s each), then each is checked on its own.
fetch() {
    tool=$1
    lock=$here/$tool/lock.txt
    [ -f "$lock" ] || die "$tool has no lock.txt: run 'images/build.sh --relock $tool' (as root)"
    mkdir -p "$debs/partial"
    wanted=$(grep -v '^#' "$lock" | while read -r pkg version arch sum file; do
        if [ ! -f "$debs/$file" ] || [ "$(sha256 "$debs/$file")" != "$sum" ]; then
            echo "$pkg:$arch=$version"
        fi
    done)
    [ -n "$wanted" ] || return 0
    say "$tool: downloading $(echo "$wanted" | wc -l) .debs"
    if ! (cd "$debs/partial" && apt-get -q download $wanted >/dev/null 2>&1) \
        && [ "$(id -u)" -eq 0 ] && [ -z "${apt_updated:-}" ]; then
        # Often apt's package lists are missing or older than the locks' point
        # release: refresh them once, as root, and try again.
        say "$tool: apt-get download failed; running apt-get update and retrying"
        apt-get update -qq && apt_updated=yes
        (cd "$debs/partial" && apt-get -q download $wanted >/dev/null 2>&1) || true
    fi
    grep -v '^#' "$lock" | while read -r pkg version arch sum file; do
        if [ -f "$debs/$file" ] && [ "$(sha256 "$debs/$file")" = "$sum" ]; then
            continue
        fi
        if [ ! -f "$debs/partial/$file" ]; then
            die "$tool: the Debian mirror no longer serves $pkg $version ($arch).
  The mirror keeps only the current point release. Either put
  $file (sha256 $sum)
  into $debs/ (e.g. from snapshot.debian.org) and run again, or re-pin
  the image to what the mirror serves now with
  'images/build.sh --relock $tool' (as root; this changes the image).
  If apt has no package lists yet, run 'apt-get update' first."
        fi
        got=$(sha256 "$debs/partial/$file")
        [ "$got" = "$sum" ] || die "$tool: $file has sha256 $got but lock.txt records $sum:
  the mirror served different bytes for $pkg $version; refusing to build"
        mv "$debs/partial/$file" "$debs/$file"
    done
}

# Where the image's own loader and libraries run a binary of the root.
in_root_exec() {
    root=$1; shift
    "$root/lib64/ld-linux-x86-64.so.2" --library-path \
        "$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" "$@"
}

# Debian bookworm systems have a merged /usr (/bin -> usr/bin, ...), and
# scripts rely on it (#!/usr/bin/env, /bin/bash); packages still ship files
# under /bin and /lib, so move them under /usr and link the old places.
merge_usr() {
    tool=$1 root=$2
    for dir in bin sbin lib lib64; do
        [ -d "$root/$dir" ] && [ ! -L "$root/$dir" ] || continue
        mkdir -p "$root/usr/$dir"
        clash=$(cd "$root/$dir" && find . ! -type d | while read -r f; do
            if [ -e "$root/usr/$dir/$f" ] || [ -L "$root/usr/$dir/$f" ]; then echo "$f"; fi
        done)
        [ -z "$clash" ] || die "$tool: both /$dir and /usr/$dir hold: $clash"
        cp -a "$root/$dir/." "$root/usr/$dir/"
        rm -rf "${root:?}/$dir"
        ln -s "usr/$dir" "$root/$dir"
    done
}

assemble() {
    tool=$1 root=$2
    rm -rf "$root"
    mkdir -p "$root"
    grep -v '^#' "$here/$tool/lock.txt" | while read -r _ _ _ _ file; do
        dpkg-deb -x "$debs/$file" "$root"
    done
    # Documentation, manuals and translations are not needed to run a tool;
    # licences are kept.
    rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale" \
        "$root/usr/share/lintian" "$root/usr/share/bug"
    if [ -d "$root/usr/share/doc" ]; then
        find "$root/usr/share/doc" ! -type d ! -name copyright -exec rm -f {} +
        find "$root/usr/share/doc" -depth -type d -empty -delete
    fi
    merge_usr "$tool" "$root"
    # busybox provides /bin/sh and the small tools the `essential` packages
    # would have (cp, cat, sed, env, ...), where the packages brought none.
    in_root_exec "$root" "$root/usr/bin/busybox" --list | while read -r applet; do
        for dir in usr/bin usr/sbin; do
            if [ -e "$root/$dir/$applet" ] || [ -L "$root/$dir/$applet" ]; then
                continue 2
            fi
        done
        ln -s busybox "$root/usr/bin/$applet"
    done
    [ -e "$root/bin/sh" ] || die "$tool: no /bin/sh in the root"
    mkdir -p "$root/etc" "$root/root" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    ( ROOT=$root; finish )
}

# Run a shell command inside the root: a user namespace lets an ordinary
# user chroot, and Java needs a /proc.
# The environment is fixed (env -i), so that nothing of the caller's, such as
# a PYTHONDONTWRITEBYTECODE left unset, changes what a smoke test writes into
# the root and with it the image's digest.
in_root_sh() {
    root=$1; shift
    unshare --user --map-root-user --mount --pid --fork --mount-proc="$root/proc" \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
        /usr/sbin/chroot "$root" /bin/sh -c "$*"
}

smoke() {
    tool=$1 root=$2
    [ -n "$SMOKE" ] || return 0
    if ! smoke_out=$(in_root_sh "$root" "$SMOKE" 2>&1); then
        echo "$smoke_out" >&2
        die "$tool: smoke test failed in the root: $SMOKE"
    fi
    say "$tool: smoke test ok: $(echo "$smoke_out" | tr '\n' ' ' | cut -c1-100)"
    # A dangling link is usually a missing alternative or maintainer-script
    # step; list them so a recipe can add what is needed.
    dangling=$(in_root_sh "$root" \
        'find / -xdev -type l ! -exec test -e {} \; -print 2>/dev/null | sort | head -20')
    [ -z "$dangling" ] || say "$tool: note: dangling links in the root:" $dangling
}

pack() {
    root=$1 tar=$2
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$root" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
}

build_one() {
    tool=$1 force=$2
    load_recipe "$tool"
    key=$(cat "$here/build.sh" "$here/$tool/recipe" "$here/$tool/lock.txt" 2>/dev/null \
        | sha256sum | cut -d' ' -f1)
    out=$build/$tool
    if [ "$force" = no ] && [ -f "$out/key" ] && [ "$(cat "$out/key")" = "$key" ] \
        && [ -f "$out/$tool.tar" ]; then
        say "$tool: up to date ($(cat "$out/$tool.tar.sha256"))"
        return
    fi
    start=$(date +%s.%N)
    fetch "$tool"
    mkdir -p "$out"
    rm -f "$out/key"
    assemble "$tool" "$out/rootfs"
    smoke "$tool" "$out/rootfs"
    pack "$out/rootfs" "$out/$tool.tar"
    sha256 "$out/$tool.tar" > "$out/$tool.tar.sha256"
    echo "$key" > "$out/key"
    end=$(date +%s.%N)
    size=$(du -sm "$out/rootfs" | cut -f1)
    say "$tool: built in $(awk "BEGIN { printf \"%.1f\", $end - $start }") s," \
        "root ${size} MB, tar sha256 $(cat "$out/$tool.tar.sha256")"
}

# Every TOOL with a recipe, less those marked OPTIONAL=yes.
all_tools() {
    for recipe in "$here"/*/recipe; do
        grep -q '^OPTIONAL=yes' "$recipe" || basename "$(dirname "$recipe")"
    done
}

mode=build force=no
case ${1:-} in
--relock) mode=relock; shift ;;
--force) force=yes; shift ;;
-h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
tools=${*:-$(all_tools)}
[ "$mode" = build ] || [ -n "${*:-}" ] || die "--relock needs the tools to re-pin"
for tool in $tools; do
    case $mode in
    relock) relock "$tool" ;;
    build) build_one "$tool" "$force" ;;
    esac
done
