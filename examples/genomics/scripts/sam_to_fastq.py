#!/usr/bin/env python3
"""Turn the paired reads of a SAM file back into the FASTQ pair they came from.

Used for sample B: the real Illumina reads of samtools' classic `ex1`
example. Reads on the reverse strand are reverse-complemented (and their
qualities reversed) so the FASTQ holds them as sequenced. Only complete
pairs are kept; pairs are written in order of first appearance. gzip is
written with mtime 0 and no file name, so the output is byte-identical on
re-run. Standard library only.

usage: sam_to_fastq.py IN.sam[.gz] OUT_R1.fq.gz OUT_R2.fq.gz
"""

import gzip
import sys

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def records(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as handle:
        for line in handle:
            if line.startswith("@"):
                continue
            fields = line.rstrip("\n").split("\t")
            flag = int(fields[1])
            if flag & 0x900:
                continue
            seq, qual = fields[9], fields[10]
            if flag & 0x10:
                seq, qual = seq.translate(COMPLEMENT)[::-1], qual[::-1]
            mate = 1 if flag & 0x40 else 2
            yield fields[0], mate, seq, qual


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    sam, out1, out2 = sys.argv[1:]
    pairs = {}
    order = []
    for name, mate, seq, qual in records(sam):
        if name not in pairs:
            pairs[name] = {}
            order.append(name)
        pairs[name][mate] = (seq, qual)
    complete = [n for n in order if len(pairs[n]) == 2]
    for mate, path in ((1, out1), (2, out2)):
        with open(path, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0
        ) as out:
            for name in complete:
                seq, qual = pairs[name][mate]
                out.write(f"@{name}/{mate}\n{seq}\n+\n{qual}\n".encode())
    print(f"{len(complete)} complete pairs of {len(order)} names", file=sys.stderr)


if __name__ == "__main__":
    main()
