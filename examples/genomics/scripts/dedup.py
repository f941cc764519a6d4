#!/usr/bin/env python3
"""Remove PCR duplicates from single-end-mapped ancient DNA, DeDup style.

Reads merged by AdapterRemoval (names starting `M_` or `MT_`) cover the
whole molecule, so both of their ends are known: two merged reads are
duplicates only if they share strand, start and end. Picard and
`samtools markdup` key single-end reads on the 5' end alone and so remove
distinct molecules that merely start at the same place, which for short
aDNA fragments is a large over-estimate. Reads that were not merged (mate 1
or mate 2 alone, singletons) only have a trustworthy 5' end, and are keyed
on strand and 5' position, as DeDup does.

Of each duplicate group the read with the highest summed base quality is
kept (ties: the smallest read name), so the output does not depend on input
order. Input: a coordinate-sorted BAM of mapped reads. Output: the
deduplicated BAM (same order) with its index, and a small metrics file.

usage: dedup.py IN.bam OUT.bam METRICS.tsv
"""

import sys

import pysam

MERGED_PREFIXES = ("M_", "MT_")


def key(read):
    strand = "-" if read.is_reverse else "+"
    if read.query_name.startswith(MERGED_PREFIXES):
        return (read.reference_id, strand, read.reference_start, read.reference_end, "merged")
    five_prime = read.reference_end if read.is_reverse else read.reference_start
    return (read.reference_id, strand, five_prime, None, "single")


def rank(read):
    """Sort key: the best read of a group sorts first."""
    return (-sum(read.query_qualities or ()), read.query_name)


def best_reads(bam):
    best = {}
    total = 0
    for read in bam:
        if read.is_unmapped or read.is_secondary or read.is_supplementary:
            continue
        total += 1
        k = key(read)
        if k not in best or rank(read) < rank(best[k]):
            best[k] = read
    return total, best


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    in_path, out_path, metrics_path = sys.argv[1:]
    with pysam.AlignmentFile(in_path, "rb") as bam:
        total, best = best_reads(bam)
        kept = sorted(
            best.values(),
            key=lambda r: (r.reference_id, r.reference_start, r.is_reverse, r.query_name),
        )
        with pysam.AlignmentFile(out_path, "wb", template=bam) as out:
            for read in kept:
                out.write(read)
    pysam.index(out_path)
    removed = total - len(kept)
    fraction = removed / total if total else 0.0
    with open(metrics_path, "w", encoding="ascii") as metrics:
        metrics.write("reads_in\treads_out\tduplicates\tduplicate_fraction\n")
        metrics.write(f"{total}\t{len(kept)}\t{removed}\t{fraction:.4f}\n")
    print(f"{in_path}: {removed} of {total} reads were duplicates ({fraction:.1%})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
