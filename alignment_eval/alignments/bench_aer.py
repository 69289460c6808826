"""Timing of reading + validating + scoring the De-En gold against a perturbed copy of itself.

Run ``python -m alignment_eval.alignments.bench_aer [--gold-dir DIR] [--repeat N]``. The gold folder
defaults to ``$ALIGNMENT_GOLD_DIR`` or ``<repo>/../shared/data/word-alignment-gold``.
The perturbed hypothesis is written to a temporary folder and deleted afterwards;
the gold is only read.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .aer import evaluate_files
from .io import Link, read_gold_alignments, read_parallel_text, write_alignments


def default_gold_dir() -> Path:
    """``$ALIGNMENT_GOLD_DIR`` if set, else ``<repo>/../shared/data/word-alignment-gold``."""
    override = os.environ.get("ALIGNMENT_GOLD_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "word-alignment-gold"


def perturb(
    gold_links: Sequence[frozenset[Link]], lengths: Sequence[tuple[int, int]], seed: int = 0
) -> list[set[Link]]:
    """Drop ~10 % of links, move ~10 % by one target position, add ~5 % random in-range links."""
    rng = random.Random(seed)
    hypothesis: list[set[Link]] = []
    for links, (src_len, tgt_len) in zip(gold_links, lengths):
        out: set[Link] = set()
        for src, tgt in sorted(links):
            roll = rng.random()
            if roll < 0.10:
                continue
            if roll < 0.20:
                tgt = min(max(tgt + rng.choice((-1, 1)), 0), tgt_len - 1)
            out.add((src, tgt))
        for _ in range(max(1, len(links) // 20)):
            if src_len and tgt_len:
                out.add((rng.randrange(src_len), rng.randrange(tgt_len)))
        hypothesis.append(out)
    return hypothesis


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alignment_eval.alignments.bench_aer", description=__doc__)
    parser.add_argument("--gold-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    gold_dir = args.gold_dir or default_gold_dir()
    gold_path, text_path = gold_dir / "deen.gold", gold_dir / "deen.src-tgt"
    if not gold_path.is_file() or not text_path.is_file():
        print(f"bench_aer: gold files not found under {gold_dir}", file=sys.stderr)
        return 2
    texts = read_parallel_text(text_path)
    gold = read_gold_alignments(gold_path, one_based=True, texts=texts, text_path=text_path)
    hypothesis = perturb([g.all_links for g in gold], [(len(p.source), len(p.target)) for p in texts])
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        hyp_path = Path(tmp) / "deen.perturbed.0based"
        write_alignments(hyp_path, hypothesis)
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            result = evaluate_files(gold_path, hyp_path, gold_one_based=True, text_path=text_path)
            timings.append(time.perf_counter() - start)
    for line in result.reference_lines("deen.perturbed"):
        print(line)
    print(
        f"read+validate+score deen ({result.sentences} sentences, {result.counts.p} gold links, "
        f"{result.links} hypothesis links, with --text): best {min(timings):.4f} s, "
        f"mean {sum(timings) / len(timings):.4f} s over {len(timings)} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
