#!/usr/bin/env python3
"""Final check of the genomics example: one table for all samples, truth sets.

Combines the per-sample tables written by summary.py into one, prints it and
writes it to --out. For every sample that has a truth set (a file named
SAMPLE.truth.tsv with columns POS REF ALT) its calls (SAMPLE.vcf.gz) must
contain every truth variant and nothing else; any miss or false call makes
the check fail with a non-zero exit and says which. Samples without a truth
set are reported as such and do not fail the check.

Optional --expect SAMPLE:COLUMN=LOW..HIGH bounds a figure of the table (used
by the host prototype to hold the simulator to its expected figures).

usage: check.py [--out summary.tsv] [--expect S:COL=LO..HI ...] FILE...
  FILEs are SAMPLE.summary.tsv and SAMPLE.truth.tsv files; each sample's
  SAMPLE.vcf.gz is read from the working directory.
"""

import argparse
import gzip
import os
import sys


def read_summary(path):
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if len(lines) != 2:
        sys.exit(f"check: {path} should hold a header and one row")
    return lines[0].split("\t"), lines[1].split("\t")


def read_truth(path):
    truth = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            pos, ref, alt = line.split()[:3]
            truth.add((int(pos), ref, alt))
    return truth


def read_calls(path):
    calls = set()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            f = line.split("\t")
            for alt in f[4].split(","):
                calls.add((int(f[1]), f[3], alt))
    return calls


def check_truth(sample, truth_path):
    """Return a list of failure messages (empty when the calls match)."""
    truth = read_truth(truth_path)
    calls = read_calls(f"{sample}.vcf.gz")
    missed = sorted(truth - calls)
    false = sorted(calls - truth)
    called = len(truth) - len(missed)
    print(f"{sample}: truth set {truth_path}: {called}/{len(truth)} truth variants called, "
          f"{len(missed)} missed, {len(false)} false calls", file=sys.stderr)
    problems = []
    for pos, ref, alt in missed:
        problems.append(f"{sample}: missed truth variant {pos} {ref}>{alt}")
    for pos, ref, alt in false:
        problems.append(f"{sample}: false call {pos} {ref}>{alt}")
    return problems


def check_expectation(rows, spec):
    """SAMPLE:COLUMN=LOW..HIGH -> failure message or None."""
    try:
        target, bounds = spec.split("=", 1)
        sample, column = target.split(":", 1)
        low, high = (float(x) for x in bounds.split(".."))
    except ValueError:
        sys.exit(f"check: bad --expect '{spec}', want SAMPLE:COLUMN=LOW..HIGH")
    row = rows.get(sample)
    if row is None or column not in row:
        return f"{spec}: no such sample or column in the summary"
    value = float(row[column])
    verdict = "ok" if low <= value <= high else "OUT OF RANGE"
    print(f"{sample}: {column} = {value:g}, expected {low:g}..{high:g}: {verdict}",
          file=sys.stderr)
    return None if verdict == "ok" else f"{sample}: {column} = {value:g} not in {low:g}..{high:g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="summary.tsv")
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    summaries = sorted(f for f in args.files if f.endswith(".summary.tsv"))
    truths = {os.path.basename(f)[: -len(".truth.tsv")]: f
              for f in args.files if f.endswith(".truth.tsv")}
    header, rows = None, {}
    for path in summaries:
        head, row = read_summary(path)
        header = header or head
        rows[row[0]] = dict(zip(head, row))
    if not rows:
        sys.exit("check: no SAMPLE.summary.tsv given")

    table = ["\t".join(header)] + ["\t".join(rows[s][c] for c in header) for s in sorted(rows)]
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(table) + "\n")
    print("\n".join(table))

    problems = []
    for sample in sorted(rows):
        if sample in truths:
            problems += check_truth(sample, truths[sample])
        else:
            print(f"{sample}: no truth set, calls not checked", file=sys.stderr)
    for sample in sorted(set(truths) - set(rows)):
        problems.append(f"{sample}: has a truth set but no summary")
    for spec in args.expect:
        message = check_expectation(rows, spec)
        if message:
            problems.append(message)

    if problems:
        for message in problems:
            print(f"check FAILED: {message}", file=sys.stderr)
        sys.exit(1)
    print("check passed", file=sys.stderr)


if __name__ == "__main__":
    main()
