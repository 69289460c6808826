"""Size and speed of an explorer page at scale: ``python -m alignment_eval.explorer.bench``.

Builds untrained models of the given architectures (:func:`alignment_eval.analysis.model_attention.build_untrained`,
seed 0, one dictionary of the text's words, so one piece per word), records them on a text, writes the
page and reports its size and the time taken; with ``--browser``, also opens it in headless Chromium
(:mod:`.browser`) and times the first render and view changes (sentence, sublayer, layer, head, level).
Untrained softmax attention is close to uniform, the least compressible case. Prints one JSON object.

    python -m alignment_eval.explorer.bench --text GOLD.src-tgt --arch softmax_transformer_wmt_en_de \\
        --arch rela_transformer_wmt_en_de --out /tmp/explorer-bench.html --browser
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from ..alignments.io import read_gold_alignments, read_parallel_text
from ..analysis.model_attention import build_untrained
from .browser import Chromium, find_chromium
from .collect import build_data
from .page import write_page
from .payload import levels_of


def browser_timings(page_path: Path, changes: int = 20, seed: int = 0) -> dict:
    """Seconds to the first render, and per view change (median, max), with the JS heap after them."""
    with Chromium() as browser:
        page = browser.new_page()
        started = time.perf_counter()
        page.navigate(page_path.resolve().as_uri(), timeout=300)
        page.wait_for("document.documentElement.dataset.ready === '1'", timeout=300)
        first = time.perf_counter() - started
        meta = page.evaluate("({n: explorer.meta.sentences.length, shapes: explorer.meta.checkpoints[0].shapes,"
                             " sublayers: explorer.meta.sublayers})")
        rng = random.Random(seed)
        times = []
        for _ in range(changes):
            sublayer = rng.choice(meta["sublayers"])
            layers, heads = meta["shapes"][sublayer]
            view = {"sentence": rng.randrange(meta["n"]), "sublayer": sublayer, "layer": rng.randint(1, layers),
                    "head": rng.choice(["avg", *range(1, heads + 1)]), "level": rng.choice(["subword", "word"])}
            started = time.perf_counter()
            page.evaluate(f"explorer.set({json.dumps(view)})", timeout=120)
            times.append(time.perf_counter() - started)
        heap = page.call("Runtime.getHeapUsage")
        problems = page.problems()
    times.sort()
    return {"first_render_s": round(first, 2), "view_change_median_s": round(times[len(times) // 2], 3),
            "view_change_max_s": round(times[-1], 3), "js_heap_used_mb": round(heap["usedSize"] / 1e6, 1),
            "console_problems": problems}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", required=True, help="'SOURCE ||| TARGET' text")
    parser.add_argument("--gold", help="its gold alignment")
    parser.add_argument("--gold-one-based", action="store_true")
    parser.add_argument("--arch", action="append", required=True, help="architecture (repeat to compare)")
    parser.add_argument("--sentences", type=int, help="only the first N pairs")
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--cross-only", action="store_true")
    parser.add_argument("--out", required=True, help="the page to write")
    parser.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    args = parser.parse_args(argv)
    pairs = read_parallel_text(args.text)
    gold = read_gold_alignments(args.gold, one_based=args.gold_one_based, texts=pairs, text_path=args.text) \
        if args.gold else None
    if args.sentences:
        pairs, gold = pairs[:args.sentences], (gold[:args.sentences] if gold else None)
    started = time.perf_counter()
    loaders = [lambda arch=arch: build_untrained(arch, pairs) for arch in args.arch]
    data = build_data(loaders, pairs, labels=args.arch, gold=gold, cross_only=args.cross_only,
                      levels=levels_of(args.bits), title="explorer benchmark", text=Path(args.text).name,
                      gold_name=Path(args.gold).name if args.gold else "")
    size = write_page(Path(args.out), data)
    result = {
        "text": args.text, "sentences": len(pairs), "architectures": args.arch,
        "shapes": data.checkpoints[0].shapes if data.checkpoints else {}, "bits": args.bits,
        "cross_only": args.cross_only, "page_bytes": size, "page_mb": round(size / 1e6, 1),
        "generation_s": round(time.perf_counter() - started, 1),
    }
    if args.browser:
        if find_chromium() is None:
            print("no chromium: run scripts/install_browser.sh or leave out --browser", file=sys.stderr)
            return 2
        result["browser"] = browser_timings(Path(args.out))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
