"""``alignment-eval interpret``: is (sparse) cross-attention an explanation of the translation?

Subcommands, each writing ``OUT/<test>.json``, ``OUT/<test>.md`` and ``OUT/<test>.png``:

* ``uniform``: cross-attention of one layer, then of all layers, replaced by uniform
  weights: change of teacher-forced NLL and of BLEU (Wiegreffe & Pinter 2019, Sec. 3.1).
* ``seeds``: checkpoints trained with different seeds: attention JSD vs. output JSD/TVD
  per token (Wiegreffe & Pinter 2019, Sec. 3.2).
* ``adversarial``: fine-tuned copies whose attention diverges (KL) from the model's
  while their output stays close (TVD), for several λ (Wiegreffe & Pinter 2019, Sec. 4).
* ``importance``: Kendall τ between attention and source-word importance by gradient ×
  input and leave-one-out (Jain & Wallace 2019, Sec. 4.1).
* ``coindex``: how much encoder outputs are about their co-indexed input tokens, and
  whether the support of sparse attention rows is the set of most influential inputs
  (Meister et al. 2021).
* ``all``: uniform, importance and coindex, plus seeds given ``--checkpoints`` and
  adversarial given ``--lambdas``, with one combined ``interpret.json`` / ``interpret.md``.

Null attention rows (ReLA) and rows where a measure is undefined are counted apart
in every JSON (``null_rows`` ...), never dropped silently.

Torch boundary: :func:`run_tests` imports torch and :mod:`.experiments` when a test
runs; the rest of this module (the command's arguments) is torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

from nmt_common.files import atomic_write_text, write_json

from ..alignments.command_line import print_message
from ..alignments.errors import AlignmentInputError
from ..alignments.io import read_parallel_text
from ..alignments.version import __version__
from ..analysis.model_attention import EncodedPair, encode_pairs, load_model
from .report import header, result_section, write_figure

TESTS = ("uniform", "seeds", "adversarial", "importance", "coindex")
DEFAULT_MAX_UNKNOWN_RATE = 0.5
DEFAULT_LAMBDAS = (0.01, 0.1, 1.0)


# --- arguments ----------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _add_text_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", required=True, help="'SOURCE ||| TARGET' tokenised text")
    parser.add_argument("--data-dir", help="binarized data folder with the dictionaries (default: the checkpoint's)")
    parser.add_argument("--spm", help="joint SentencePiece model (default: tokens are used as they are)")
    parser.add_argument("--source-spm", help="SentencePiece model of the model's source side")
    parser.add_argument("--target-spm", help="SentencePiece model of the model's target side")
    parser.add_argument("--reverse", action="store_true", help="the model translates the text's TARGET side into its SOURCE side")
    parser.add_argument("--max-sentences", type=_positive_int, help="use only the first N sentence pairs")
    parser.add_argument("--max-unknown-rate", type=float, default=DEFAULT_MAX_UNKNOWN_RATE,
                        help="fail when more of the text's pieces than this are <unk> (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=32, help="sentences per forward pass (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random projections and fine-tuning (default: 0)")
    parser.add_argument("--out-dir", required=True, help="folder for <test>.json, <test>.md and <test>.png")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")


def _add_test_options(parser: argparse.ArgumentParser, test: str) -> None:
    if test in ("uniform", "all"):
        parser.add_argument("--beam", type=_positive_int, default=1, help="beam size for BLEU (default: 1, greedy)")
    if test in ("adversarial", "all"):
        parser.add_argument("--lambdas", type=float, nargs="+",
                            default=None if test == "all" else list(DEFAULT_LAMBDAS),
                            help="weights of the attention KL" + (" (default: %(default)s)" if test != "all"
                                                                 else "; given, `all` runs the adversarial test"))
        parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps per λ (default: %(default)s)")
        parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default: %(default)s)")
        parser.add_argument("--layer", type=_positive_int, help="attack the cross-attention of this decoder layer only (1-based)")
        parser.add_argument("--output-divergence", choices=("tvd", "kl"), default="tvd",
                            help="keep outputs close in TVD or KL(base || adversary) (default: tvd)")
        parser.add_argument("--adversarial-batch-size", type=_positive_int, default=16,
                            help="sentences per fine-tuning step (default: %(default)s)")
    if test in ("importance", "all"):
        parser.add_argument("--leave-one-out", choices=("unk", "drop"), default="unk",
                            help="leave a source word out by replacing it with <unk> or by dropping it (default: unk)")
    if test in ("coindex", "all"):
        parser.add_argument("--projections", type=_positive_int, default=64,
                            help="random projections estimating the Jacobian norm; >= d_model is exact (default: 64)")


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "interpret",
        help="is cross-attention an explanation? uniform, seeds, adversarial, importance, coindex tests",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Run 'alignment-eval interpret TEST --help' for the options of one test.",
    )
    tests = parser.add_subparsers(dest="interpret_test", metavar="TEST", required=True)
    helps = {
        "uniform": "uniform cross-attention per layer and in all layers: ΔNLL and ΔBLEU (Wiegreffe & Pinter 2019)",
        "seeds": "attention JSD vs. output divergence across seeds (Wiegreffe & Pinter 2019)",
        "adversarial": "fine-tune attention away from the model's at small output cost (Wiegreffe & Pinter 2019)",
        "importance": "Kendall tau of attention vs. gradient x input and leave-one-out (Jain & Wallace 2019)",
        "coindex": "co-indexed representations; sparse support vs. influential inputs (Meister et al. 2021)",
        "all": "uniform, importance and coindex (+ seeds with --checkpoints, adversarial with --lambdas)",
    }
    for test, help_text in helps.items():
        sub = tests.add_parser(test, help=help_text, description=help_text)
        if test == "seeds":
            sub.add_argument("--checkpoints", nargs="+", required=True, metavar="CKPT",
                             help="checkpoints of the same model trained with different seeds (at least 2)")
        else:
            sub.add_argument("--checkpoint", required=True, help="checkpoint trained with --user-dir fairseq_plugins")
        if test == "all":
            sub.add_argument("--checkpoints", nargs="+", metavar="CKPT",
                             help="seed checkpoints (at least 2); given, `all` runs the seeds test on them")
        _add_text_arguments(sub)
        _add_test_options(sub, test)
        sub.set_defaults(func=run)


# --- running ------------------------------------------------------------------------------------


def unknown_rate(encoded: Sequence[EncodedPair]) -> float:
    """Share of source and target pieces that the dictionaries map to <unk>."""
    pieces = sum(len(p.source_ids) - 1 + len(p.target_ids) for p in encoded)
    return sum(p.unknown_pieces for p in encoded) / pieces if pieces else 0.0


def check_vocabulary(encoded: Sequence[EncodedPair], text: str, checkpoint: str, max_unknown_rate: float) -> float:
    """Raise :class:`AlignmentInputError` when too much of ``text`` is unknown to the checkpoint; return the rate."""
    if not encoded:
        raise AlignmentInputError(text, None, "no sentence pairs to evaluate")
    rate = unknown_rate(encoded)
    if rate > max_unknown_rate:
        raise AlignmentInputError(
            text, None,
            f"{rate:.1%} of the text's pieces are unknown to {checkpoint}'s dictionaries (limit "
            f"{max_unknown_rate:.0%}): wrong --data-dir, missing --spm, or a text of another language pair?",
        )
    return rate


def _load(args: argparse.Namespace, checkpoint: str):
    return load_model(checkpoint, data_dir=args.data_dir, spm=args.spm,
                      source_spm=args.source_spm, target_spm=args.target_spm)


def _prepare(args: argparse.Namespace, loaded) -> tuple:
    """(encoded pairs, references, unknown rate) of ``args.text`` for ``loaded``."""
    pairs = read_parallel_text(args.text)
    if args.max_sentences is not None:
        pairs = pairs[:args.max_sentences]
    encoded = encode_pairs(loaded, pairs, reverse=args.reverse)
    rate = check_vocabulary(encoded, args.text, loaded.checkpoint, args.max_unknown_rate)
    if rate > 0:
        print_message("warning", f"{rate:.2%} of the pieces of {args.text} are unknown to {loaded.checkpoint} (<unk>)")
    references = [" ".join(pair.source if args.reverse else pair.target) for pair in pairs]
    return encoded, references, rate


def _model_name(checkpoint: str) -> str:
    path = Path(checkpoint)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _write(out_dir: Path, result: Dict[str, Any], metadata: Dict[str, Any]) -> str:
    """Write ``<test>.json``, ``<test>.png`` and ``<test>.md``; returns the Markdown section."""
    test = result["test"]
    figure = f"{test}.png"
    write_figure(result, out_dir / figure, _model_name(metadata["checkpoint"]))
    write_json(out_dir / f"{test}.json", {**metadata, **result}, indent=1)
    section = "\n".join(result_section(result, figure))
    atomic_write_text(out_dir / f"{test}.md", "\n".join(header(metadata)) + "\n" + section)
    return section


def run_tests(args: argparse.Namespace, tests: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Run ``tests`` with the options of ``args``; write their files; return {test: result}."""
    import torch  # the torch boundary (see the module docstring)

    from . import experiments

    torch.manual_seed(args.seed)
    out_dir = Path(args.out_dir)
    checkpoints: List[str] = list(getattr(args, "checkpoints", None) or [])
    if "seeds" in tests and len(checkpoints) < 2:
        raise AlignmentInputError(
            "--checkpoints", None, f"the seeds test needs at least 2 checkpoints, got {len(checkpoints)}"
        )
    for checkpoint in ([args.checkpoint] if getattr(args, "checkpoint", None) else []) + checkpoints:
        if not Path(checkpoint).is_file():
            raise AlignmentInputError(checkpoint, None, "checkpoint not found")
    main_checkpoint = getattr(args, "checkpoint", None) or checkpoints[0]
    loaded = _load(args, main_checkpoint)
    encoded, references, rate = _prepare(args, loaded)
    metadata = {
        "checkpoint": loaded.checkpoint, "normalizer": experiments.cross_normalizer(loaded), "text": str(args.text),
        "sentences": len(encoded), "unknown_rate": rate, "reverse": args.reverse, "version": __version__,
        "options": {key: value for key, value in vars(args).items() if key not in ("func", "command")},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Dict[str, Any]] = {}
    sections: List[str] = []
    importances = None

    def finish(result: Dict[str, Any]) -> None:
        results[result["test"]] = result
        sections.append(_write(out_dir, result, metadata))
        print(f"alignment-eval interpret: wrote {out_dir / result['test']}.{{json,md,png}}", file=sys.stderr)

    if "uniform" in tests:
        finish(experiments.uniform_attention_test(loaded, encoded, references, beam=args.beam,
                                                  batch_size=args.batch_size))
    if "importance" in tests or "coindex" in tests:
        importances = experiments.sentence_importances(
            loaded, encoded, batch_size=args.batch_size,
            leave_one_out_mode=getattr(args, "leave_one_out", None) if "importance" in tests else None,
        )
    if "importance" in tests:
        finish(experiments.importance_test(importances))
    if "coindex" in tests:
        finish(experiments.coindex_test(loaded, encoded, importances, projections=args.projections, seed=args.seed))
    if "seeds" in tests:
        models = [loaded if str(Path(c)) == loaded.checkpoint else _load(args, c) for c in checkpoints]
        seeds_metadata_note = {"normalizers": [experiments.cross_normalizer(m) for m in models]}
        result = experiments.seeds_test(models, encoded, batch_size=args.batch_size)
        finish({**result, **seeds_metadata_note})
    if "adversarial" in tests:
        finish(experiments.adversarial_test(
            loaded, encoded, lambdas=args.lambdas, steps=args.steps, learning_rate=args.lr,
            layer=None if args.layer is None else args.layer - 1, output_divergence=args.output_divergence,
            batch_size=args.adversarial_batch_size, seed=args.seed,
        ))
    if len(tests) > 1 or args.interpret_test == "all":
        write_json(out_dir / "interpret.json", {**metadata, "tests": results}, indent=1)
        atomic_write_text(out_dir / "interpret.md", "\n".join(header(metadata)) + "\n" + "\n".join(sections))
    if args.json:
        print(json.dumps({**metadata, "tests": results} if len(results) > 1 else {**metadata, **results[tests[0]]}))
    else:
        print("\n".join(sections), end="")
    return results


def tests_of(args: argparse.Namespace) -> List[str]:
    """Which tests ``args`` asks for (``all``: seeds and adversarial only when their inputs are given)."""
    if args.interpret_test != "all":
        return [args.interpret_test]
    tests = ["uniform", "importance", "coindex"]
    if args.checkpoints:
        tests.append("seeds")
    if args.lambdas:
        tests.append("adversarial")
    return tests


def run(args: argparse.Namespace) -> int:
    run_tests(args, tests_of(args))
    return 0
