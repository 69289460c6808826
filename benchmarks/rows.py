"""Score-level microbenchmarks: the normalizers' row kernels and the masking of the score product.

    python -m benchmarks.rows [--scores 1048576] [--repeat 15] [--threads 1]

Two tables, each timed in one run with the candidates interleaved (same moment, same load), median
over ``--repeat`` rounds:

* **Normalizers**: time per score of every CPU normalizer on ``[rows, keys]`` float32 scores
  (about ``--scores`` in all, at least ``keys`` rows), at 64, 128, 256 and 1,024 keys, with random rows (N(0, 0.3)) and with
  causal rows (the upper triangle -inf, as decoder self-attention in training), as
  :func:`fairseq_plugins.normalizers.normalize` runs them (C++ row kernels when built), and the
  ratio to ``torch.softmax`` on the same scores (< 1: faster).
* **Masking**: the scores of one training batch of the tiny model (4 heads of 16 dimensions,
  7 x 128 and 3 x 256 keys, a fifth of the keys padded in all but the first sentence): fairseq's
  ``bmm`` then out-of-place ``masked_fill``, against ``baddbmm`` with the mask as its input
  (:meth:`fairseq_plugins.attention.SparseMultiheadAttention._own_scores`), and ``bmm`` alone.
"""

from __future__ import annotations

import argparse
from typing import List, Sequence

import torch

from .common import interleaved_medians

CPU = torch.device("cpu")

KEYS = (64, 128, 256, 1024)
NORMALIZERS = ("softmax", "sparsemax", "entmax15", "topk", "alpha_entmax")


def score_rows(keys: int, total: int, causal: bool, seed: int = 0) -> torch.Tensor:
    """float32 ``[total // keys, keys]`` scores; causal: row i of each block of ``keys`` rows keeps keys <= i."""
    generator = torch.Generator().manual_seed(seed)
    rows = max(keys, total // keys // keys * keys)
    scores = torch.randn(rows, keys, generator=generator) * 0.3
    if causal:
        future = torch.triu(torch.ones(keys, keys, dtype=torch.bool), 1)  # [keys, keys]
        scores.view(-1, keys, keys).masked_fill_(future, float("-inf"))  # [rows, keys] -> [blocks, keys, keys]
    return scores


def normalizer_table(total: int, repeat: int, keys: Sequence[int] = KEYS) -> List[str]:
    from fairseq_plugins.normalizers import normalize

    lines = ["| keys | rows | " + " | ".join(f"{name} ns/score (/ softmax)" for name in NORMALIZERS) + " |",
             "|---|---|" + "---|" * len(NORMALIZERS)]
    alpha = torch.tensor(1.5)
    for width in keys:
        for causal in (False, True):
            scores = score_rows(width, total, causal)
            params = {"topk": {"k": 8}, "alpha_entmax": {"alpha": alpha}}
            candidates = {name: (lambda n=name: normalize(n, scores, **params.get(n, {}))) for name in NORMALIZERS}
            times = interleaved_medians(candidates, repeat, CPU)
            per_score = {name: t / scores.numel() * 1e9 for name, t in times.items()}
            cells = [f"{per_score[n]:.2f} ({times[n] / times['softmax']:.2f}x)" for n in NORMALIZERS]
            kind = "causal" if causal else "random"
            lines.append(f"| {width} ({kind}) | {scores.size(0)} | " + " | ".join(cells) + " |")
    return lines


def masking_table(repeat: int) -> List[str]:
    from fairseq_plugins.attention import padding_additive_mask

    lines = ["| batch | heads x dim | bmm + masked_fill (fairseq) | baddbmm, mask as input (ours) | bmm alone |",
             "|---|---|---|---|---|"]
    heads, dim = 4, 16
    generator = torch.Generator().manual_seed(0)
    for bsz, length in ((7, 128), (3, 256)):
        q = torch.randn(bsz * heads, length, dim, generator=generator)
        k = torch.randn(bsz * heads, length, dim, generator=generator)
        padded = torch.zeros(bsz, length, dtype=torch.bool)
        padded[1:, : length // 5] = True  # left padding, as fairseq's source batches

        def fairseq_way(q=q, k=k, padded=padded, bsz=bsz, length=length):
            scores = torch.bmm(q, k.transpose(1, 2))  # [bsz*heads, tgt, src]
            # [bsz*heads, tgt, src] -> [bsz, heads, tgt, src], masked, -> back
            return (scores.view(bsz, heads, length, length)
                    .masked_fill(padded.view(bsz, 1, 1, length), float("-inf"))
                    .view(bsz * heads, length, length))

        def additive_way(q=q, k=k, padded=padded):  # as SparseMultiheadAttention._own_scores
            return torch.baddbmm(padding_additive_mask(padded, heads, q.dtype), q, k.transpose(1, 2))

        if not torch.equal(fairseq_way(), additive_way()):
            raise AssertionError("the two masked score products differ")
        times = interleaved_medians({"fairseq": fairseq_way, "ours": additive_way,
                                     "bmm": lambda q=q, k=k: torch.bmm(q, k.transpose(1, 2))}, repeat, CPU)
        lines.append(f"| {bsz} x {length} x {length} | {heads} x {dim} | {times['fairseq'] * 1e6:.0f} us | "
                     f"{times['ours'] * 1e6:.0f} us | {times['bmm'] * 1e6:.0f} us |")
    return lines


def main(argv=None) -> None:
    from fairseq_plugins import cpu_kernels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=2**20, help="float32 scores per normalizer call (default 2^20)")
    parser.add_argument("--repeat", type=int, default=15, help="interleaved rounds; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)")
    args = parser.parse_args(argv)
    if args.scores < 1024 or args.repeat < 1 or args.threads < 0:
        parser.error("--scores must be >= 1024, --repeat >= 1 and --threads >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# python -m benchmarks.rows --scores {args.scores} --repeat {args.repeat} --threads {args.threads}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU normalizers: {cpu_kernels.status()}, "
          f"median of {args.repeat} interleaved rounds\n")
    print("## Normalizers: time per score, float32 (ratio to torch.softmax on the same scores)\n")
    print("\n".join(normalizer_table(args.scores, args.repeat)))
    print("\n## Masking the score product (one training batch of the tiny model)\n")
    print("\n".join(masking_table(args.repeat)))


if __name__ == "__main__":
    main()
