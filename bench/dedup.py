"""Near-duplicate search at scale: MinHash LSH over text signatures (`mm15.data.minhash`) and the keyed
join over 256-bit perceptual hashes (`mm15.data.dedup.near_hash_pairs`), all against all, at each size:
time, peak memory, candidate pairs, pairs found, recall on a sample, and a projection to 100M.

    python bench/dedup.py                                  # --sizes 1000000,10000000
    python bench/dedup.py --sizes 100000,1000000 --sample 2000

Data, generated in the measuring process (not timed; its peak RSS includes it):
  minhash  N signatures of 128 rows x 16 bits (`compact`). Background records get independent uniform
           values: what MinHash gives sets that share nothing with any other. N/1000 planted clusters of
           2-4 records are real sets of 100 random shingles: a base set and copies that each replace a
           share of its elements, for a Jaccard with the base uniform in [0.55, 1] (copies of one base
           are also similar to each other); their signatures come from `signatures`. One more cluster
           is 2,000 identical records (boilerplate): a bucket over the cap in every band.
  phash    N uniform 256-bit hashes; N/1000 planted copies of random rows at 0..16 bits, half with the
           bits spread one per band (the worst case for a band join).

Recall:
  minhash  a sample (--sample) of the planted pairs outside the big cluster, each with the exact
           Jaccard of its two sets: recall = the share of pairs with J >= 0.8 found. "returned < 0.8"
           counts returned sampled pairs whose exact J is below 0.8 (returned through the verification
           margin, see minhash.py), with the lowest such J; "recall, verify_at = 0.8" is the recall had
           only pairs whose estimate reaches 0.8 been kept. The big cluster's pairs are listed apart.
  phash    every planted pair (exact Hamming distance known) plus --brute records compared with every
           hash (exact Hamming, all N): recall = found / pairs within 12 bits; "> 12 bits" is the
           number of returned pairs beyond 12 bits (0: candidates are checked on the full distance).

Each (search, N) runs in a fresh child process pinned to --threads cores, so its peak RSS (VmHWM) is its
own. The projection to 100M is fitted on the two largest sizes measured: time scaled from the largest as
N log N (one sort of N keys per band or key dominates), and as the power law t = c N^k through both
points (k printed: a check, noisy on a loaded machine); memory as the line a + b N through both.
Random candidates grow as N^2 (2^-64 a band for MinHash, 35 N^2 / 2^33 for phash). Targets at 10M:
under 5 minutes and 4 GB on 2 cores, recall >= 99%.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_S, TARGET_MB, TARGET_RECALL = 300.0, 4096.0, 0.99
SET_SIZE, BIG_CLUSTER = 100, 2000


def peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def random_rows(n: int, words: int, seed: int, dtype) -> np.ndarray:
    """(n, words x 64 bits) of uniform bits, filled in chunks (no transient copy of the whole)."""
    out = np.empty((n, words * 8 // np.dtype(dtype).itemsize), dtype)
    gen, step = np.random.PCG64(seed), 1 << 18
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        out[lo:hi] = gen.random_raw((hi - lo) * words).view(dtype).reshape(hi - lo, -1)
    return out


def minhash_data(n: int, seed: int):
    """Signatures with planted clusters; (signatures, planted pairs (i, j, exact J), big cluster rows)."""
    from mm15.data.minhash import compact, signatures

    rng = np.random.default_rng(seed)
    sig = random_rows(n, 32, seed, np.uint16)  # 128 rows x 16 bits
    sets, clusters = [], []
    for _ in range(max(100, n // 1000)):
        base = rng.integers(0, 1 << 32, SET_SIZE, dtype=np.uint64).astype(np.uint32)
        members = [base]
        for _ in range(rng.integers(1, 4)):
            j = rng.uniform(0.55, 1.0)
            x = round(SET_SIZE * (1 - j) / (1 + j))  # |A & B| = n - x, |A | B| = n + x
            copy = base.copy()
            copy[rng.choice(SET_SIZE, x, replace=False)] = rng.integers(0, 1 << 32, x, dtype=np.uint64)
            members.append(copy)
        clusters.append(range(len(sets), len(sets) + len(members)))
        sets += members
    rows = rng.choice(n, len(sets) + BIG_CLUSTER, replace=False)
    sig[rows[: len(sets)]] = compact(signatures(sets))
    big = np.sort(rows[len(sets) :])
    sig[big] = compact(signatures([rng.integers(0, 1 << 32, SET_SIZE, dtype=np.uint64).astype(np.uint32)]))
    pairs = []
    for c in clusters:
        for a in c:
            for b in c:
                if a < b:
                    sa, sb = set(sets[a].tolist()), set(sets[b].tolist())
                    i, j = sorted((int(rows[a]), int(rows[b])))
                    pairs.append((i, j, len(sa & sb) / len(sa | sb)))
    return sig, pairs, big


def run_minhash(n: int, sample: int, threads: int, seed: int) -> dict:
    from mm15.data.minhash import THRESHOLD, estimate, near_pairs

    started = time.perf_counter()
    sig, planted, big = minhash_data(n, seed)
    data_s = time.perf_counter() - started
    started = time.perf_counter()
    pairs, stats = near_pairs(sig, workers=threads)
    seconds = time.perf_counter() - started
    found = set((pairs[:, 0] * n + pairs[:, 1]).tolist())
    rng = np.random.default_rng(seed + 1)
    picked = [planted[k] for k in rng.choice(len(planted), min(sample, len(planted)), replace=False)]
    true = [(i, j) for i, j, jac in picked if jac >= THRESHOLD]
    ti, tj = np.array(true, np.int64).reshape(-1, 2).T
    strict = estimate(sig[ti], sig[tj]) >= THRESHOLD  # what verify_at = threshold would have kept
    below = [jac for i, j, jac in picked if jac < THRESHOLD and i * n + j in found]
    in_big = np.isin(pairs, big).all(axis=1).sum()
    return {
        "search": "minhash",
        "n": n,
        "data_s": data_s,
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        "candidates": stats.candidates,
        "found": stats.found,
        "recall": sum(i * n + j in found for i, j in true) / len(true),
        "strict": float(np.mean([i * n + j in found for i, j in true] & strict)),
        "checked": len(true),
        "below": f"{len(below)}" + (f" (J >= {min(below):.2f})" if below else ""),
        "note": f"big cluster: {in_big:,} of {BIG_CLUSTER * (BIG_CLUSTER - 1) // 2:,} pairs (star); "
        f"{stats.oversized_buckets} oversized buckets, {stats.skipped_pairs:,} pairs skipped (summed over the bands)",
    }


def phash_data(n: int, seed: int):
    """Uniform hashes with planted copies; (words, planted (i, j, distance))."""
    rng = np.random.default_rng(seed)
    words = random_rows(n, 4, seed, np.uint64)
    count = max(100, n // 1000)
    rows = rng.choice(n, 2 * count, replace=False)
    planted = []
    for k in range(count):
        a, b, d = int(rows[2 * k]), int(rows[2 * k + 1]), int(rng.integers(0, 17))
        if k % 2:  # one bit in each of d different bands
            bits = [16 * band + int(rng.integers(16)) for band in rng.choice(16, d, replace=False)]
        else:
            bits = rng.choice(256, d, replace=False).tolist()
        copy = words[a].copy()
        for bit in bits:
            copy[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
        words[b] = copy
        planted.append((min(a, b), max(a, b), d))
    return words, planted


def brute_pairs(words: np.ndarray, records: np.ndarray, max_distance: int, chunk: int = 1 << 16) -> set:
    """Every pair (i < j) within max_distance bits with i or j in `records`, by exact Hamming to all."""
    out = set()
    probe = words[records]
    for lo in range(0, len(words), chunk):
        block = words[lo : lo + chunk]
        dist = np.bitwise_count(probe[:, None, :] ^ block[None, :, :]).sum(axis=2)
        for r, c in zip(*np.nonzero(dist <= max_distance), strict=True):
            i, j = int(records[r]), lo + int(c)
            if i != j:
                out.add((min(i, j), max(i, j)))
    return out


def run_phash(n: int, brute: int, seed: int) -> dict:
    from mm15.data.dedup import MAX_DISTANCE, near_hash_pairs

    started = time.perf_counter()
    words, planted = phash_data(n, seed)
    data_s = time.perf_counter() - started
    started = time.perf_counter()
    pairs, candidates = near_hash_pairs(words)
    seconds = time.perf_counter() - started
    found = set(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True))
    rng = np.random.default_rng(seed + 1)
    records = np.unique(np.r_[[i for i, _, _ in planted[: brute // 2]], rng.choice(n, brute - brute // 2)])
    true = {(i, j) for i, j, d in planted if d <= MAX_DISTANCE} | brute_pairs(words, records, MAX_DISTANCE)
    beyond = sum(d > MAX_DISTANCE and (i, j) in found for i, j, d in planted)
    return {
        "search": "phash",
        "n": n,
        "data_s": data_s,
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        "candidates": candidates,
        "found": len(found),
        "recall": len(true & found) / len(true),
        "strict": None,
        "checked": len(true),
        "below": str(beyond),
        "note": f"old 16-band join: ~{16 * n * n / 2**17:.1e} random candidates; "
        f"{len(records)} records checked against all",
    }


def child(search: str, n: int, args) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    if search == "minhash":
        return run_minhash(n, args.sample, args.threads, args.seed)
    return run_phash(n, args.brute, args.seed)


def projection(rows: list[dict], target: int = 100_000_000) -> str:
    """Time and memory at `target` from the two largest sizes measured: time scaled as N log N from the
    largest (one sort per band or key), and as the power law through both; memory on the line."""
    (n1, t1, m1), (n2, t2, m2) = [(r["n"], r["seconds"], r["peak_mb"]) for r in rows[-2:]]
    k = math.log(t2 / t1) / math.log(n2 / n1)
    nlogn = t2 * target * math.log(target) / (n2 * math.log(n2))
    return (
        f"| {rows[-1]['search']} | {target:,} (projected) | | {nlogn:.0f} (N log N); {t2 * (target / n2) ** k:.0f} "
        f"(N^{k:.2f}) | {m2 + (m2 - m1) / (n2 - n1) * (target - n2):.0f} | | | | | | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated numbers of records")
    parser.add_argument("--searches", default="minhash,phash", help="which searches to run")
    parser.add_argument("--sample", type=int, default=10_000, help="planted MinHash pairs checked for recall")
    parser.add_argument("--brute", type=int, default=16, help="phash records compared with every hash")
    parser.add_argument("--threads", type=int, default=2, help="cores each measuring process may use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("SEARCH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args)))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print("| search | N | data s (untimed) | search s | peak RSS MB | candidate pairs | found pairs ", end="")
    print(
        "| recall (pairs checked) | recall, verify_at = 0.8 | returned < 0.8 / > 12 bits | within targets |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    notes = []
    for search in args.searches.split(","):
        rows = []
        for n in sizes:
            command = [sys.executable, __file__, "--child", search, str(n)]
            command += ["--sample", str(args.sample), "--brute", str(args.brute)]
            command += ["--threads", str(args.threads), "--seed", str(args.seed)]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            r = json.loads(
                subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
            )
            rows.append(r)
            ok = r["seconds"] < TARGET_S and r["peak_mb"] < TARGET_MB and r["recall"] >= TARGET_RECALL
            print(
                f"| {search} | {n:,} | {r['data_s']:.1f} | {r['seconds']:.1f} | {r['peak_mb']:.0f} "
                f"| {r['candidates']:,} | {r['found']:,} | {r['recall']:.2%} ({r['checked']:,}) "
                f"| {'' if r['strict'] is None else format(r['strict'], '.2%')} "
                f"| {r['below']} | {'yes' if ok else 'NO'} |",
                flush=True,
            )
            notes.append(f"{search} {n:,}: {r['note']}")
        if len(rows) >= 2:
            print(projection(rows), flush=True)
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
