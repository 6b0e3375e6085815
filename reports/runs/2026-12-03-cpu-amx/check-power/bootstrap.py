#!/usr/bin/env python3
"""How often would the time-model check pass on this machine? (2026-12-03, fourth stop)

Bootstrap over the paired checks' (prediction, measured median) pairs: draw ROUNDS pairs per
variant with replacement, take the median prediction over the median measurement (what
predicted_vs_measured.py does), and count how often every variant is within 15%. Pairs keep
whatever bias and spread the model and the machine had; the draw asks what a check of that
many rounds would give if it were repeated.
  python3 bootstrap.py [--unbiased] DIR [DIR...]   (DIRs: time_model_check.sh PAIR_VARIANTS=1
  outputs). --unbiased first scales each variant's predictions by its median pair's measured /
  predicted ratio: what the check would give with no per-variant bias, the spread alone.
"""
import glob
import json
import random
import re
import statistics
import sys

BOUND, DRAWS = 0.15, 4000


def pairs(d):
    out = {}
    for f in glob.glob(f"{d}/prediction-*-v*.json"):
        r, v = re.search(r"prediction-(\d+)-v(\d+)\.json$", f).groups()
        pred = json.load(open(f))["variants"][0]
        with open(f"{d}/run-{r}-v{v}/results.jsonl") as runs:
            run = [json.loads(line) for line in runs][-1]
        out.setdefault(pred["variant"], []).append(
            (pred["predicted_step_s"], run["timing"]["step_s"]["median"]))
    return out


def within(sample):
    p = statistics.median(a for a, _ in sample)
    m = statistics.median(b for _, b in sample)
    return abs(p / m - 1) <= BOUND


def main(args):
    unbiased = "--unbiased" in args
    dirs = [a for a in args if a != "--unbiased"]
    random.seed(2026)
    data = {}
    for d in dirs:
        for v, x in pairs(d).items():
            data.setdefault(v, []).extend(x)
    if unbiased:
        for v, x in data.items():
            k = statistics.median(b / a for a, b in x)
            data[v] = [(a * k, b) for a, b in x]
        print("each variant's predictions scaled by its median pair's measured/predicted ratio")
    print(f"pairs from {', '.join(dirs)}: {sum(map(len, data.values()))} over {len(data)} variants")
    for rounds in (3, 5, 9):
        per = {v: 0 for v in data}
        every = 0
        for _ in range(DRAWS):
            ok = True
            for v, x in data.items():
                hit = within([random.choice(x) for _ in range(rounds)])
                per[v] += hit
                ok &= hit
            every += ok
        print(f"{rounds} rounds: P(every variant within 15%) = {every / DRAWS:.2f}")
        for v, n in per.items():
            errs = [a / b - 1 for a, b in data[v]]
            print(f"  {v:<66} P(within) {n / DRAWS:.2f}  median pair {100 * statistics.median(errs):+.1f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
