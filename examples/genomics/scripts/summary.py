#!/usr/bin/env python3
"""Collect one sample's figures from the outputs of the earlier steps.

Reads, from the working directory, the files the pipeline's steps wrote for
SAMPLE (named SAMPLE.<what>), and prints one tab-separated table: a header
line and one row. Standard library only.

  SAMPLE.settings                AdapterRemoval: read pairs, merged pairs
  SAMPLE.mapping.flagstat.txt    samtools flagstat of all reads given to bwa
  SAMPLE.filtered.flagstat.txt   samtools flagstat after the MAPQ >= 25 filter
  SAMPLE.dedup.tsv               dedup.py: duplicates removed
  SAMPLE.5pCtoT_freq.txt         mapDamage: C->T at the 5' end, by position
  SAMPLE.3pGtoA_freq.txt         mapDamage: G->A at the 3' end, by position
  SAMPLE.lgdistribution.txt      mapDamage: fragment lengths
  SAMPLE.coverage.tsv            samtools coverage: depth and breadth per contig
  SAMPLE.vcf.gz                  bcftools: filtered haploid variant calls

usage: summary.py SAMPLE
"""

import gzip
import re
import sys

COLUMNS = [
    "sample",
    "read_pairs",
    "merged",
    "merged_pct",
    "reads_mapped_input",
    "mapped_q25",
    "mapped_pct",
    "duplicates_pct",
    "unique_reads",
    "ct_5p_pos1",
    "ga_3p_pos1",
    "median_length",
    "mean_depth",
    "breadth_pct",
    "variants",
]


def fail(message):
    sys.exit(f"summary: {message}")


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as err:
        fail(f"cannot read {path}: {err.strerror}")


def settings_figures(path):
    text = read_text(path)

    def number(label):
        match = re.search(rf"^{re.escape(label)}: (\d+)$", text, re.MULTILINE)
        if not match:
            fail(f"{path} has no line '{label}'")
        return int(match.group(1))

    pairs = number("Total number of read pairs")
    merged = number("Number of full-length collapsed pairs") + number(
        "Number of truncated collapsed pairs"
    )
    return pairs, merged


def flagstat_counts(path):
    text = read_text(path)
    total = re.search(r"^(\d+) \+ \d+ in total", text, re.MULTILINE)
    mapped = re.search(r"^(\d+) \+ \d+ mapped \(", text, re.MULTILINE)
    if not total or not mapped:
        fail(f"{path} does not look like samtools flagstat output")
    return int(total.group(1)), int(mapped.group(1))


def tsv_rows(path):
    lines = [l for l in read_text(path).splitlines() if l and not l.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, l.split("\t"))) for l in lines[1:]]


def first_position(path):
    """Value at position 1 of a mapDamage *_freq.txt file."""
    for line in read_text(path).splitlines()[1:]:
        pos, value = line.split("\t")[:2]
        if pos == "1":
            return float(value)
    fail(f"{path} has no position 1")


def median_length(path):
    counts = {}
    for line in read_text(path).splitlines():
        if line.startswith("#") or line.startswith("Std"):
            continue
        fields = line.split()
        if len(fields) == 3:
            counts[int(fields[1])] = counts.get(int(fields[1]), 0) + int(fields[2])
    total = sum(counts.values())
    seen = 0
    for length in sorted(counts):
        seen += counts[length]
        if 2 * seen >= total:
            return length
    return 0


def coverage(path):
    """Depth and breadth over all contigs, weighted by contig length."""
    rows = []
    for line in read_text(path).splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        rows.append((int(f[2]) - int(f[1]) + 1, int(f[4]), float(f[6])))
    length = sum(r[0] for r in rows)
    if not length:
        fail(f"{path} lists no contig")
    depth = sum(r[0] * r[2] for r in rows) / length
    breadth = 100.0 * sum(r[1] for r in rows) / length
    return depth, breadth


def count_variants(path):
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return sum(1 for line in handle if not line.startswith("#"))
    except OSError as err:
        fail(f"cannot read {path}: {err}")


def summarise(sample):
    pairs, merged = settings_figures(f"{sample}.settings")
    mapping_input, _ = flagstat_counts(f"{sample}.mapping.flagstat.txt")
    _, mapped = flagstat_counts(f"{sample}.filtered.flagstat.txt")
    dedup = tsv_rows(f"{sample}.dedup.tsv")[0]
    depth, breadth = coverage(f"{sample}.coverage.tsv")
    return {
        "sample": sample,
        "read_pairs": pairs,
        "merged": merged,
        "merged_pct": f"{100.0 * merged / pairs:.1f}" if pairs else "0.0",
        "reads_mapped_input": mapping_input,
        "mapped_q25": mapped,
        "mapped_pct": f"{100.0 * mapped / mapping_input:.1f}" if mapping_input else "0.0",
        "duplicates_pct": f"{100.0 * float(dedup['duplicate_fraction']):.1f}",
        "unique_reads": dedup["reads_out"],
        "ct_5p_pos1": f"{first_position(f'{sample}.5pCtoT_freq.txt'):.3f}",
        "ga_3p_pos1": f"{first_position(f'{sample}.3pGtoA_freq.txt'):.3f}",
        "median_length": median_length(f"{sample}.lgdistribution.txt"),
        "mean_depth": f"{depth:.1f}",
        "breadth_pct": f"{breadth:.1f}",
        "variants": count_variants(f"{sample}.vcf.gz"),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    row = summarise(sys.argv[1])
    print("\t".join(COLUMNS))
    print("\t".join(str(row[c]) for c in COLUMNS))


if __name__ == "__main__":
    main()
