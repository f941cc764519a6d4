#!/bin/sh
# Host prototype of the genomics example: run every step of pipeline.yaml,
# exactly as written there, with the host's Debian tools, sample by sample,
# in a temp dir (scripts/host_run.py keeps seal's step semantics: one fresh
# directory per step holding only the declared inputs). Then hold the
# figures to what the simulator was built to give:
#   sample A: ~70% mapped, ~23% duplicates, C->T at 5' position 1 ~0.3,
#             60-100x mean depth, every truth SNP called and no other;
#   sample B: real modern reads, so no damage signal.
#
#   scripts/prototype.sh [--keep] [--images]
#     --keep    leave the temp dir in place
#     --images  run each step in its image's root (images/build.sh builds
#               them) instead of with the host's tools
# Tools: scripts/install-host-tools.sh (as root) installs them.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
keep='' images=''
for arg in "$@"; do
    case $arg in
    --keep) keep=yes ;;
    --images) images=yes ;;
    *) echo "usage: prototype.sh [--keep] [--images]" >&2; exit 2 ;;
    esac
done

missing=
if [ -z "$images" ]; then
    for tool in fastqc AdapterRemoval bwa samtools bcftools mapDamage mosdepth; do
        PATH=/usr/bin:/bin command -v "$tool" >/dev/null || missing="$missing $tool"
    done
    /usr/bin/python3 -c 'import pysam' 2>/dev/null || missing="$missing python3-pysam"
fi
/usr/bin/python3 -c 'import yaml' 2>/dev/null || missing="$missing python3-yaml"
if [ -n "$missing" ]; then
    echo "prototype: missing on this host:$missing; run scripts/install-host-tools.sh as root" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/seal-genomics-prototype.XXXXXX")
if [ -n "$keep" ]; then
    echo "prototype: working in $work (kept)" >&2
else
    trap 'rm -rf "$work"' EXIT
fi

start=$(date +%s)
if [ -n "$images" ]; then
    echo "prototype: running pipeline.yaml steps in the image roots" >&2
    "$here/images/build.sh"
    build=${SEAL_GENOMICS_BUILD:-$here/images/build}
    /usr/bin/python3 "$here/scripts/host_run.py" --images "$build" "$here/pipeline.yaml" "$work"
else
    echo "prototype: running pipeline.yaml steps on the host" >&2
    /usr/bin/python3 "$here/scripts/host_run.py" "$here/pipeline.yaml" "$work"
fi
end=$(date +%s)

echo "prototype: checking the expected figures" >&2
cd "$work/results"
/usr/bin/python3 "$here/scripts/check.py" --out "$work/summary.tsv" \
    --expect A:mapped_pct=62..78 \
    --expect A:duplicates_pct=18..28 \
    --expect A:ct_5p_pos1=0.22..0.38 \
    --expect A:ga_3p_pos1=0.22..0.38 \
    --expect A:median_length=40..56 \
    --expect A:mean_depth=60..100 \
    --expect A:breadth_pct=99.5..100 \
    --expect B:ct_5p_pos1=0..0.05 \
    --expect B:mapped_pct=80..100 \
    --expect B:breadth_pct=90..100 \
    A.summary.tsv B.summary.tsv "$here/data/A/A.truth.tsv"

# The check must also be able to fail: a truth set with one SNP moved (one
# truth variant missed, one call now false) has to be rejected by name.
echo "prototype: checking that a wrong truth set fails the check" >&2
mkdir -p "$work/doctored"
sed 's/^16256\tC\tT$/16257\tC\tT/' "$here/data/A/A.truth.tsv" > "$work/doctored/A.truth.tsv"
if /usr/bin/python3 "$here/scripts/check.py" --out "$work/doctored/summary.tsv" \
    A.summary.tsv B.summary.tsv "$work/doctored/A.truth.tsv" >/dev/null 2>"$work/doctored/err"; then
    echo "prototype: FAILED: check.py accepted a truth set it should reject" >&2
    exit 1
fi
if ! grep -q 'missed truth variant 16257 C>T' "$work/doctored/err" \
    || ! grep -q 'false call 16256 C>T' "$work/doctored/err"; then
    cat "$work/doctored/err" >&2
    echo "prototype: FAILED: check.py did not name the problems" >&2
    exit 1
fi
echo "prototype: ok, it failed naming 16257 C>T as missed and 16256 C>T as false" >&2
echo "prototype: passed in $((end - start)) s of pipeline time; results: $(du -sh . | cut -f1)" >&2
