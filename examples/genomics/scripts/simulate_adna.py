#!/usr/bin/env python3
"""Simulate a small, seeded ancient-DNA paired-end library with a known truth.

Sample A of seal's genomics example. Python 3 standard library only, and
byte-identical on re-run: every random number comes from `random.Random(seed)`
through `.random()` alone (the Mersenne Twister stream, stable across Python
versions), never through helpers whose algorithms have changed between
versions (`choice`, `randrange`, `gauss`, ...), and gzip is written with
mtime 0 and no file name.

The model, step by step:

1. The individual's mitogenome is the rCRS (NC_012920.1) with the SNPs in
   `SNPS` applied. The rCRS "N" at 3107 is only a numbering placeholder (no
   real mitogenome has a base there), so it is deleted.
2. Endogenous library molecules: length from a log-normal (median 48 bp),
   start uniform on the linear genome, strand 50/50.
3. Briggs-model deamination of each molecule: the 5' end of the sequenced
   strand and the 5' end of its complement each carry a single-stranded
   overhang whose length is geometric, P(overhang >= k) = (1 - lambda)^k.
   Inside the 5' overhang C->T at rate `DS`; inside the complement's
   overhang (the read's 3' end after end repair) G->A at `DS`; elsewhere
   C->T and G->A at `DD` each (double-stranded deamination).
4. Environmental molecules (a fraction of all reads) from a real bacterial
   genome (E. coli 536), same length model, no damage.
5. PCR duplicates: each library molecule is read k times, k ~ Poisson(mu)
   conditioned on k >= 1; copies share ends and damage.
6. Each read pair is 2 x 100 bp: the insert then the TruSeq adapter
   (then poly-A if the insert is very short). Quality strings are sampled,
   as pairs, from real Illumina reads; each base is miscalled with the
   probability its quality states.

Outputs: PREFIX_R1.fq.gz, PREFIX_R2.fq.gz and PREFIX.truth.tsv (POS REF ALT,
1-based rCRS coordinates), plus a short report of the simulated figures on
stderr.
"""

import argparse
import gzip
import math
import random
import sys

# SNPs applied to the rCRS: the classic positions at which a haplogroup U5a
# mitogenome differs from the rCRS (itself haplogroup H2a2a1). The first
# eleven separate the rCRS from most non-H mitogenomes, the rest mark U, U5
# and U5a. They are realistic positions and alleles; nothing downstream
# relies on the haplogroup.
SNPS = [
    (73, "A", "G"),
    (263, "A", "G"),
    (750, "A", "G"),
    (1438, "A", "G"),
    (2706, "A", "G"),
    (3197, "T", "C"),
    (4769, "A", "G"),
    (7028, "C", "T"),
    (8860, "A", "G"),
    (9477, "G", "A"),
    (11467, "A", "G"),
    (11719, "G", "A"),
    (12308, "A", "G"),
    (12372, "G", "A"),
    (13617, "T", "C"),
    (14766, "C", "T"),
    (14793, "A", "G"),
    (15326, "A", "G"),
    (16256, "C", "T"),
    (16270, "C", "T"),
]
PLACEHOLDER_N = 3107

# TruSeq adapters as AdapterRemoval expects them by default (index ATCACG).
ADAPTER1 = "AGATCGGAAGAGCACACGTCTGAACTCCAGTCACATCACGATCTCGTATGCCGTCTTCTGCTTG"
ADAPTER2 = "AGATCGGAAGAGCGTCGTGTAGGGAAAGAGTGTAGATCTCGGTGGTCGCCGTATCATT"
READ_LEN = 100

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
OTHER_BASES = {"A": "CGT", "C": "AGT", "G": "ACT", "T": "ACG", "N": "ACG"}


def revcomp(seq):
    return seq.translate(COMPLEMENT)[::-1]


def read_fasta(path):
    """Return the first record's sequence, upper case (plain or gzip)."""
    opener = gzip.open if path.endswith(".gz") else open
    seq = []
    with opener(path, "rt") as handle:
        seen_header = False
        for line in handle:
            if line.startswith(">"):
                if seen_header:
                    break
                seen_header = True
                continue
            seq.append(line.strip())
    return "".join(seq).upper()


def read_qualities(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as handle:
        lines = handle.read().splitlines()
    return [lines[i] for i in range(3, len(lines), 4)]


class Rng:
    """Variates built on `random.Random.random()` only (see module doc)."""

    def __init__(self, seed):
        self._rng = random.Random(seed)
        self.random = self._rng.random

    def below(self, n):
        return min(int(self.random() * n), n - 1)

    def normal(self):
        # Box-Muller, one value per call (the second is discarded on purpose:
        # fewer states to get wrong than caching it).
        u1 = 1.0 - self.random()
        u2 = self.random()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def geometric(self, p_continue):
        k = 0
        while self.random() < p_continue:
            k += 1
        return k

    def poisson_at_least_one(self, mu):
        limit = math.exp(-mu)
        while True:
            k, prod = 0, self.random()
            while prod > limit:
                k += 1
                prod *= self.random()
            if k >= 1:
                return k

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def individual_genome(reference):
    seq = list(reference)
    for pos, ref, alt in SNPS:
        if seq[pos - 1] != ref:
            sys.exit(f"reference has {seq[pos - 1]} at {pos}, expected {ref}")
        seq[pos - 1] = alt
    if seq[PLACEHOLDER_N - 1] != "N":
        sys.exit(f"reference has no N placeholder at {PLACEHOLDER_N}")
    del seq[PLACEHOLDER_N - 1]
    return "".join(seq)


def fragment_length(rng, args):
    while True:
        length = int(round(math.exp(math.log(args.median_length) + args.sigma * rng.normal())))
        if args.min_length <= length <= args.max_length:
            return length


def draw_molecule(rng, genome, args):
    length = fragment_length(rng, args)
    while True:
        start = rng.below(len(genome) - length + 1)
        seq = genome[start : start + length]
        if "N" not in seq:
            break
    return seq if rng.random() < 0.5 else revcomp(seq)


def deaminate(rng, seq, args):
    """Apply Briggs-model damage to one sequenced strand (see module doc)."""
    p_overhang = 1.0 - args.overhang_lambda
    left = rng.geometric(p_overhang)
    right = rng.geometric(p_overhang)
    out = list(seq)
    n = len(out)
    for i, base in enumerate(out):
        if base == "C":
            rate = args.ds if i < left else args.dd
            if rng.random() < rate:
                out[i] = "T"
        elif base == "G":
            rate = args.ds if i >= n - right else args.dd
            if rng.random() < rate:
                out[i] = "A"
    return "".join(out)


def with_errors(rng, seq, qual, error_prob):
    out = list(seq)
    for i, q in enumerate(qual):
        if rng.random() < error_prob[q]:
            out[i] = OTHER_BASES[out[i]][rng.below(3)]
    return "".join(out)


def read_through(insert, adapter):
    read = insert + adapter
    if len(read) < READ_LEN:
        read += "A" * (READ_LEN - len(read))
    return read[:READ_LEN]


def simulate(args):
    rng = Rng(args.seed)
    genome = individual_genome(read_fasta(args.reference))
    environment = read_fasta(args.environment)
    qual1 = read_qualities(args.qualities1)
    qual2 = read_qualities(args.qualities2)
    if len(qual1) != len(qual2) or any(len(q) != READ_LEN for q in qual1 + qual2):
        sys.exit("quality files must be paired 100 bp reads")
    error_prob = {chr(c): 10 ** (-(c - 33) / 10) for c in range(33, 127)}

    molecules = []  # (sequence, copies, is_endogenous)
    for _ in range(args.endogenous):
        seq = deaminate(rng, draw_molecule(rng, genome, args), args)
        molecules.append((seq, rng.poisson_at_least_one(args.pcr_mu), True))
    n_endo_reads = sum(m[1] for m in molecules)
    # Environmental molecules until they make up the requested read fraction.
    target_env = round(n_endo_reads * args.env_fraction / (1.0 - args.env_fraction))
    n_env_reads = 0
    while n_env_reads < target_env:
        seq = draw_molecule(rng, environment, args)
        copies = rng.poisson_at_least_one(args.pcr_mu)
        molecules.append((seq, copies, False))
        n_env_reads += copies

    reads = [i for i, m in enumerate(molecules) for _ in range(m[1])]
    rng.shuffle(reads)

    r1_path = f"{args.prefix}_R1.fq.gz"
    r2_path = f"{args.prefix}_R2.fq.gz"
    with open(r1_path, "wb") as raw1, open(r2_path, "wb") as raw2:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw1, mtime=0) as out1, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw2, mtime=0) as out2:
            for n, index in enumerate(reads, start=1):
                insert = molecules[index][0]
                k = rng.below(len(qual1))
                q1, q2 = qual1[k], qual2[k]
                s1 = with_errors(rng, read_through(insert, ADAPTER1), q1, error_prob)
                s2 = with_errors(rng, read_through(revcomp(insert), ADAPTER2), q2, error_prob)
                name = f"{args.name}:{n:06d}"
                out1.write(f"@{name}/1\n{s1}\n+\n{q1}\n".encode())
                out2.write(f"@{name}/2\n{s2}\n+\n{q2}\n".encode())

    with open(f"{args.prefix}.truth.tsv", "w", encoding="ascii") as truth:
        truth.write("#pos\tref\talt\n")
        for pos, ref, alt in SNPS:
            truth.write(f"{pos}\t{ref}\t{alt}\n")

    report(args, molecules, len(reads), len(genome))


def report(args, molecules, n_reads, genome_len):
    endo = [m for m in molecules if m[2]]
    endo_reads = sum(m[1] for m in endo)
    endo_bases = sum(len(m[0]) for m in endo)
    lengths = sorted(len(m[0]) for m in endo)
    print(
        f"read pairs {n_reads}; endogenous {endo_reads} ({endo_reads / n_reads:.1%}); "
        f"duplicates {1 - len(molecules) / n_reads:.1%}; "
        f"median length {lengths[len(lengths) // 2]}; "
        f"unique endogenous depth {endo_bases / genome_len:.1f}x",
        file=sys.stderr,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="rCRS FASTA")
    parser.add_argument("--environment", required=True, help="bacterial FASTA (.gz ok)")
    parser.add_argument("--qualities1", required=True, help="real R1 FASTQ for qualities")
    parser.add_argument("--qualities2", required=True, help="real R2 FASTQ for qualities")
    parser.add_argument("--prefix", required=True, help="output path prefix")
    parser.add_argument("--name", default="A", help="read name prefix")
    parser.add_argument("--seed", type=int, default=20160208)
    parser.add_argument("--endogenous", type=int, default=22500, help="unique mt molecules")
    parser.add_argument("--env-fraction", type=float, default=0.30)
    parser.add_argument("--median-length", type=float, default=48.0)
    parser.add_argument("--sigma", type=float, default=0.40, help="log-normal sigma")
    parser.add_argument("--min-length", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=300)
    parser.add_argument("--overhang-lambda", type=float, default=0.35)
    parser.add_argument("--ds", type=float, default=0.45, help="single-stranded deamination")
    parser.add_argument("--dd", type=float, default=0.015, help="double-stranded deamination")
    parser.add_argument("--pcr-mu", type=float, default=0.55, help="Poisson mean of reads/molecule")
    simulate(parser.parse_args())


if __name__ == "__main__":
    main()
