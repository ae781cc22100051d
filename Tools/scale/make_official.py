#!/usr/bin/env python3
"""Teacher top-K in the official TinyViT layout, at ImageNet scale, in about a minute per 10^7 records.

    python3 Tools/scale/make_official.py --out DIR --keys 14197122 --classes 21841 --k 100 \\
        --ranks 8 --epochs 1 --key-style wnid

Writes DIR/logits_top{K}_epoch{E}/rank{r}-keys.txt and rank{r}-values.bin exactly as the official
logits manager (microsoft/Cream, TinyViT/data/augmentation/manager.py) leaves them: each rank's keys
in the order its sampler gave them, one per line, and records `int32 seed | K x int16 class index |
K x float16 probability` (little-endian, probabilities descending). The epoch order is a permutation
padded to a multiple of the ranks and dealt as PyTorch's DistributedSampler deals it (rank r takes
positions r, r + W, ...), so padded keys sit in two ranks with different seeds and values; within one
rank a repeated key is dropped, as the official writer drops it.

The teacher is synthetic, with the shape of ../shared/fixtures/make_official_logits.py (logits
2.5 N(0, 1), a boosted true class, a boosted run of neighbouring classes), drawn without ever making
a row of C logits: the top order statistics of the background are drawn directly (Renyi's
representation of the largest of n uniforms), and the softmax normaliser of the background uses its
expectation. That keeps the cost O(K) per record, so 14.2 M records take minutes, not hours.
"""

import argparse
import os
import sys

import numpy as np

SIGMA = 2.5                      # background logits: SIGMA * N(0, 1), as the fixture generator
ROWS_PER_STEP = 1 << 16


def top_background(rng, rows, background, k):
    """The k largest of `background` iid N(0, 1) per row, descending, without drawing them all:
    the largest uniform is V1^(1/n), the next U_(n) * V2^(1/(n-1)), ... (Renyi), then Phi^-1."""
    log_u = np.zeros(rows)
    logs = np.empty((rows, k))
    for j in range(k):
        log_u = log_u + np.log(rng.random(rows)) / (background - j)
        logs[:, j] = log_u
    upper = -np.expm1(logs)                        # 1 - U, accurate for U near 1
    return -_quantile_upper(upper)


def _quantile_upper(q):
    """Phi^-1(q) for small q (the upper tail seen from below), via Acklam's low branch, which is
    accurate for q < 0.02425; larger q (k close to the class count) use the central branch."""
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
    b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01]
    q = np.clip(q, 1e-300, 1 - 1e-16)
    out = np.empty_like(q)
    low = q < 0.02425
    s = np.sqrt(-2 * np.log(q[low]))
    out[low] = (((((c[0] * s + c[1]) * s + c[2]) * s + c[3]) * s + c[4]) * s + c[5]) / \
               ((((d[0] * s + d[1]) * s + d[2]) * s + d[3]) * s + 1)
    r = q[~low] - 0.5
    t = r * r
    out[~low] = (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * r / \
                (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1)
    return out


def teacher_rows(rng, true_class, classes, k):
    """(int16 indices (n, k), float16 probabilities (n, k)) of the synthetic teacher for images of
    the given true classes: softmax of the background, the true class + U(4, 9) and a run of
    2..39 classes starting 1..29 below it + U(1, 4), top k descending."""
    n = len(true_class)
    run_length = rng.integers(2, 40, n)
    run_start = np.maximum(0, true_class - rng.integers(1, 30, n))
    run_end = np.minimum(classes, run_start + run_length)
    special = 40 + 1                                   # the run (<= 39) and the true class
    # Candidates: the special classes with their own logits, and the k largest of the background.
    spec_class = run_start[:, None] + np.arange(special - 1)[None, :]
    spec_ok = spec_class < run_end[:, None]
    spec_logit = SIGMA * rng.standard_normal((n, special - 1)) + rng.uniform(1, 4, n)[:, None]
    true_in_run = (true_class >= run_start) & (true_class < run_end)
    true_logit = SIGMA * rng.standard_normal(n) + rng.uniform(4, 9, n)
    # The true class inside the run gets both boosts, as in the fixture generator.
    spec_logit = np.where(spec_class == true_class[:, None], spec_logit + rng.uniform(4, 9, n)[:, None], spec_logit)
    spec_logit = np.where(spec_ok, spec_logit, -np.inf)
    extra_class = np.where(true_in_run, -1, true_class)
    extra_logit = np.where(true_in_run, -np.inf, true_logit)
    background = classes - run_length - (~true_in_run)
    bg_logit = SIGMA * top_background(rng, n, int(background.min()), k)
    # Background classes: k distinct classes outside the special ones (a sorted draw with offsets,
    # shifted past the run and the true class), dealt to the order statistics in random order.
    draws = np.sort(rng.integers(0, classes - special - k + 1, (n, k)), axis=1) + np.arange(k)
    bg_class = draws + (draws >= run_start[:, None]) * run_length[:, None]
    bg_class = bg_class + ((~true_in_run)[:, None] & (bg_class >= true_class[:, None]))
    bg_class = np.minimum(bg_class, classes - 1)
    shuffle = np.argsort(rng.random((n, k)), axis=1)
    bg_class = np.take_along_axis(bg_class, shuffle, axis=1)
    logits = np.concatenate([spec_logit, extra_logit[:, None], bg_logit], axis=1)
    labels = np.concatenate([spec_class, extra_class[:, None], bg_class], axis=1)
    # Softmax normaliser: the candidates exactly, the rest of the background by its expectation
    # E[exp(SIGMA Z) | Z below the k-th order statistic] ~ exp(SIGMA^2 / 2) per class (the top is
    # tiny next to ~2e4 classes' mass).
    top = np.max(np.where(np.isfinite(logits), logits, -np.inf), axis=1, keepdims=True)
    weights = np.exp(logits - top)
    rest = (background - k) * np.exp(SIGMA * SIGMA / 2 - top[:, 0])
    total = weights.sum(axis=1) + rest
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    probabilities = np.take_along_axis(weights, order, axis=1) / total[:, None]
    classes_out = np.take_along_axis(labels, order, axis=1)
    # Collisions of a background draw with a special class are rare; keep the record valid (the
    # official files never repeat a class in a record) by dropping repeats in favour of the first.
    fixed = _dedupe(classes_out, classes)
    return fixed.astype(np.int16), probabilities.astype(np.float16)


def _dedupe(classes_out, classes):
    """Replace a repeated class in a row by an unused one (rare), keeping rows distinct."""
    ordered = np.sort(classes_out, axis=1)
    rows = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    for row in rows.tolist():
        seen, replacement = set(), 0
        for j, c in enumerate(classes_out[row].tolist()):
            if c in seen:
                while replacement in seen or replacement in classes_out[row]:
                    replacement += 1
                classes_out[row, j] = replacement
                c = replacement
            seen.add(c)
    return classes_out


def keys_of(style, true_class, count):
    if style == "index":
        return [str(i) for i in range(count)]
    # ImageNet-21k style: class WordNet id, then a per-image number (n00004475_10029).
    wnid = (7846 + true_class.astype(np.int64) * 13) % 10 ** 8
    return [f"n{w:08d}_{10001 + i}" for i, w in enumerate(wnid.tolist())]


def write_epoch(out, epoch, args, keys, true_class, rng):
    folder = os.path.join(out, f"logits_top{args.k}_epoch{epoch}")
    os.makedirs(folder, exist_ok=True)
    n = len(keys)
    order = rng.permutation(n)
    per_rank = -(-n // args.ranks)
    padded = np.concatenate([order, order[: per_rank * args.ranks - n]])
    dtype = np.dtype([("seed", "<i4"), ("index", "<i2", (args.k,)), ("value", "<f2", (args.k,))])
    for rank in range(args.ranks):
        share = padded[rank::args.ranks]
        # The official writer drops a key it already wrote in this rank.
        _, first = np.unique(share, return_index=True)
        share = share[np.sort(first)]
        with open(os.path.join(folder, f"rank{rank}-values.bin"), "wb") as values, \
                open(os.path.join(folder, f"rank{rank}-keys.txt"), "w") as key_file:
            for start in range(0, len(share), ROWS_PER_STEP):
                images = share[start:start + ROWS_PER_STEP]
                records = np.empty(len(images), dtype=dtype)
                records["seed"] = rng.integers(0, 1 << 31, len(images), dtype=np.int64).astype(np.int32)
                records["index"], records["value"] = teacher_rows(rng, true_class[images], args.classes, args.k)
                values.write(records.tobytes())
                key_file.write("".join(keys[i] + "\n" for i in images.tolist()))
        print(f"epoch {epoch} rank {rank}: {len(share)} records", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--keys", type=int, required=True, help="images (keys) per epoch")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--key-style", choices=["index", "wnid"], default="index")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.k <= min(args.classes - 41, 256) or args.classes > 32767:
        parser.error("need 1 <= k <= min(classes - 41, 256) and classes <= 32767 (int16 indices)")
    rng = np.random.default_rng(args.seed)
    true_class = rng.integers(0, args.classes, args.keys)
    keys = keys_of(args.key_style, true_class, args.keys)
    for epoch in range(args.epochs):
        write_epoch(args.out, epoch, args, keys, true_class, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
