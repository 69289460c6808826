#!/usr/bin/env python3
"""Write a synthetic parallel corpus whose word alignment is known.

Target = source words mapped one-to-one (``s17`` -> ``t17``) in reverse order, so
source word i aligns to target word len-1-i.  Small enough to train the tiny
architectures on a laptop CPU in seconds; used by the tests and ``make toy-data``.

    python scripts/toy_corpus.py OUT_DIR [--train 1500] [--valid 50] [--test 50] [--vocab 30]

writes OUT_DIR/{train,valid,test}.{src,tgt} and OUT_DIR/{split}.align (0-based Pharaoh).
"""

import argparse
import random
from pathlib import Path
from typing import Dict


def write_toy_corpus(out_dir: Path, sizes: Dict[str, int], vocab: int = 30, seed: int = 0) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for split, size in sizes.items():
        src_lines, tgt_lines, align_lines = [], [], []
        for _ in range(size):
            words = [rng.randrange(vocab) for _ in range(rng.randint(3, 9))]
            n = len(words)
            src_lines.append(" ".join(f"s{w}" for w in words))
            tgt_lines.append(" ".join(f"t{w}" for w in reversed(words)))
            align_lines.append(" ".join(f"{i}-{n - 1 - i}" for i in range(n)))
        for suffix, lines in (("src", src_lines), ("tgt", tgt_lines), ("align", align_lines)):
            (out_dir / f"{split}.{suffix}").write_text("\n".join(lines) + "\n")
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--valid", type=int, default=50)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--vocab", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_toy_corpus(args.out_dir, {"train": args.train, "valid": args.valid, "test": args.test},
                     vocab=args.vocab, seed=args.seed)
    print(f"wrote {args.out_dir}/{{train,valid,test}}.{{src,tgt,align}}")


if __name__ == "__main__":
    main()
