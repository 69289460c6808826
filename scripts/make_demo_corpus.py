#!/usr/bin/env python3
"""Regenerate the shipped demo corpus data/demo/tatoeba-deu-eng from the Tatoeba Challenge test set.

    python scripts/make_demo_corpus.py [--source ../shared/data/tatoeba/challenge-test-v2021-08-07/deu-eng]

Keeps pairs whose sides have 1-30 words, drops exact duplicate pairs, shuffles with a fixed
seed and writes train (8,000), valid (500) and test (500) pairs.  Tatoeba data is
CC BY 2.0 FR (tatoeba.org); see data/demo/tatoeba-deu-eng/ATTRIBUTION.md.
"""

import argparse
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "tatoeba" / "challenge-test-v2021-08-07" / "deu-eng"
SIZES = {"train": 8000, "valid": 500, "test": 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "demo" / "tatoeba-deu-eng")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    german = (args.source / "tatoeba-test-v2021-08-07.deu").read_text(encoding="utf-8").splitlines()
    english = (args.source / "tatoeba-test-v2021-08-07.eng").read_text(encoding="utf-8").splitlines()
    if len(german) != len(english):
        raise SystemExit(f"{args.source}: {len(german)} German but {len(english)} English lines")
    seen, pairs = set(), []
    for de, en in zip(german, english):
        de, en = de.strip(), en.strip()
        if not (1 <= len(de.split()) <= 30 and 1 <= len(en.split()) <= 30) or (de, en) in seen:
            continue
        seen.add((de, en))
        pairs.append((de, en))
    random.Random(args.seed).shuffle(pairs)
    args.out.mkdir(parents=True, exist_ok=True)
    start = 0
    for split, size in SIZES.items():
        chunk = pairs[start:start + size]
        start += size
        for index, lang in enumerate(("de", "en")):
            (args.out / f"{split}.{lang}").write_text("".join(p[index] + "\n" for p in chunk), encoding="utf-8")
    print(f"{len(pairs)} usable pairs; wrote {', '.join(f'{s} {n}' for s, n in SIZES.items())} to {args.out}")


if __name__ == "__main__":
    main()
