"""Benchmark: extraction of every layer and head for a gold-set-sized text with a tiny model.

    python -m alignment_eval.analysis.bench_extract [--text FILE] [--arch rela_transformer_tiny] [--repeat 3]

Builds an untrained model of ``--arch`` (speed does not depend on the weights) with a
dictionary made from the text, then times :func:`alignment_eval.analysis.extract.extract_alignments`
(all layers, all heads + average, 3 methods, normal and shifted) and the AER scoring of
every resulting file against a gold derived from the text.  Prints seconds; this is a
benchmark, not a test.  The default text is the 508-sentence De-En gold set in
``../shared/data`` when present, else a synthetic text of the same size.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from ..alignments.aer import score_alignments
from ..alignments.io import GoldAlignment, SentencePair, read_parallel_text
from .extract import extract_alignments
from .model_attention import build_untrained

DEFAULT_TEXT = Path(__file__).resolve().parents[3] / "shared" / "data" / "word-alignment-gold" / "deen.src-tgt"


def synthetic_pairs(count: int = 508, seed: int = 0):
    rng = random.Random(seed)
    return [
        SentencePair(tuple(f"s{rng.randrange(2000)}" for _ in range(n)), tuple(f"t{rng.randrange(2000)}" for _ in range(n)))
        for n in (rng.randint(5, 40) for _ in range(count))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT if DEFAULT_TEXT.exists() else None)
    parser.add_argument("--arch", default="rela_transformer_tiny")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pairs = read_parallel_text(args.text) if args.text else synthetic_pairs()
    loaded = build_untrained(args.arch, pairs)
    gold = [GoldAlignment(frozenset((i, i) for i in range(min(len(p.source), len(p.target)))), frozenset()) for p in pairs]
    print(f"{len(pairs)} sentence pairs from {args.text or 'a synthetic text'}; {args.arch}")
    for _ in range(args.repeat):
        start = time.perf_counter()
        alignments = extract_alignments(loaded, pairs)
        extracted = time.perf_counter()
        for hypothesis in alignments.values():
            score_alignments(gold, hypothesis)
        scored = time.perf_counter()
        print(f"extract {len(alignments)} alignments: {extracted - start:.2f} s; "
              f"score all of them: {scored - extracted:.2f} s")


if __name__ == "__main__":
    main()
