"""Ready-made experiments: ``python -m mt_pipeline.runs demo|multi30k|multi30k-sweep|interpret-multi30k``.

* ``demo``: the shipped Tatoeba German-English corpus (data/demo, CC BY 2.0 FR) ->
  SentencePiece -> binarize -> small softmax and ReLA models, side by side -> translate the
  held-out 500 sentences -> BLEU -> attention statistics -> AER against the RWTH De-En gold
  set when it is available (``GOLD_DIR``, default ../shared/data/word-alignment-gold; the
  gold is read in place, never copied) -> results/demo/.  About 7 minutes on 2 cores.
* ``multi30k``: Multi30k De-En (read from ``MULTI30K_DIR``, default ../shared/data/multi30k;
  not redistributable, so only results are written) plus the RWTH gold text, every attention
  variant x seeds until validation BLEU stops improving -> results/multi30k-de-en/.
* ``multi30k-sweep``: learning rate and warmup at a fixed budget for softmax and ReLA.
* ``interpret-multi30k``: the interpretability battery on the finished multi30k runs.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from nmt_common.files import atomic_write_text
from nmt_common.logs import add_verbosity_arguments, setup_logging, verbosity
from nmt_common.markdown import markdown_table
from nmt_common.variants import VARIANTS

from .errors import PipelineError
from .experiment import run_experiment
from .log import log
from .spec import AlignerTraining, ExperimentSpec, GoldSet, TestSet

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def gold_set(directory: Path) -> Optional[GoldSet]:
    """The RWTH De-En gold (508 sentences, 1-based) if present, else None."""
    text, alignment = directory / "deen.src-tgt", directory / "deen.gold"
    if text.is_file() and alignment.is_file():
        return GoldSet(text=text, alignment=alignment, one_based=True)
    return None


def _gunzip_to(source: Path, destination: Path) -> Path:
    if not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(source, "rt", encoding="utf-8") as stream:
            atomic_write_text(destination, stream.read())
    return destination


# The demo's model and budget: both variants train side by side (one core each) within the 10 minutes.
DEMO_SPM_VOCAB = int(os.environ.get("DEMO_SPM_VOCAB", 2000))
DEMO_ARCH_ARGS = os.environ.get("DEMO_ARCH_ARGS", "--share-all-embeddings --encoder-embed-dim 128 --decoder-embed-dim 128 "
                                "--encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-layers 2 --decoder-layers 2").split()
DEMO_TRAIN_ARGS = os.environ.get("DEMO_TRAIN_ARGS", "--lr 0.003 --warmup-updates 300 --max-tokens 2048 --dropout 0.1").split()
DEMO_UPDATES = int(os.environ.get("DEMO_UPDATES", 1600))


def demo_spec(args) -> ExperimentSpec:
    from .prepare import prepare_corpus

    corpus = ROOT / "data" / "demo" / "tatoeba-deu-eng"
    prepared = prepare_corpus(
        corpus / "train.de", corpus / "train.en", src_lang="de", tgt_lang="en",
        valid_src=corpus / "valid.de", valid_tgt=corpus / "valid.en",
        test_src=corpus / "test.de", test_tgt=corpus / "test.en",
        out=Path(args.data_bin or "data-bin/demo-de-en"), spm_vocab=DEMO_SPM_VOCAB, root=Path("data/work"), name="demo-de-en",
    )
    gold = gold_set(Path(args.gold_dir))
    notes = ["Data: 8,000 Tatoeba German-English pairs (data/demo, CC BY 2.0 FR), 500 held-out test pairs."]
    notes.append(f"AER: RWTH De-En gold ({gold.alignment})." if gold else
                 f"AER skipped: no gold set in {args.gold_dir} (set GOLD_DIR).")
    return ExperimentSpec(
        name="demo", data_bin=prepared.data_bin, spm_model=prepared.spm_model,
        test_sets={"tatoeba-test": TestSet("test", prepared.test_reference)}, out_dir=Path(args.out or "results/demo"),
        checkpoint_root=Path(args.checkpoint_root), on_change=args.on_change, seeds=args.seeds or (1,),
        variants=args.variants or ("softmax", "rela"), arch="sparse_transformer_tiny",
        arch_args=DEMO_ARCH_ARGS, train_args=DEMO_TRAIN_ARGS, max_update=args.max_update or DEMO_UPDATES, gold=gold, notes=notes, checkpoint=args.checkpoint or "last",
    )


MULTI30K_TESTS = (("test2016", "test_2016_flickr"), ("test2017", "test_2017_flickr"), ("mscoco2017", "test_2017_mscoco"))
# three seeds where the verdicts need them (the reference, ReLA, the sparse normaliser of the ordering), one elsewhere
MULTI30K_SEEDS = {"softmax": (1, 2, 3), "rela": (1, 2, 3), "entmax15": (1, 2, 3)}
GOLD_COPIES = 4  # the RWTH De-En text (508 pairs) is upsampled 4x into the Multi30k training data
MULTI30K_MAX_UPDATE = 12000  # cap of the stopping rule; ReLA was still improving at 8,000 (seed 1)


def multi30k_spec(args) -> ExperimentSpec:
    """Multi30k task 1 De->En + the RWTH De-En gold set's text (no links), one budget for every variant.

    The gold text is added to training so that AER measures attention on text the model has
    seen, as the paper's WMT14 models saw Europarl (and as unsupervised aligners see the text
    they align). Multi30k's test sets never enter training.
    """
    from .clean import TrainPart
    from .prepare import add_test_set, prepare_corpus

    source = Path(args.multi30k_dir)
    work = Path("data/work/multi30k")
    names = (("train", "train"), ("valid", "val")) + MULTI30K_TESTS
    files = {f"{split}.{lang}": _gunzip_to(source / f"{name}.{lang}.gz", work / f"{split}.{lang}")
             for split, name in names for lang in ("de", "en")}
    gold = gold_set(Path(args.gold_dir))
    if gold is None:
        raise PipelineError(f"{args.gold_dir}: the RWTH De-En gold set (deen.src-tgt, deen.gold) is needed: "
                            "its text is part of the training data (set GOLD_DIR)")
    gold_de, gold_en = _split_parallel_text(gold.text, work / "rwth-gold-text.de", work / "rwth-gold-text.en")
    data_bin = Path(args.data_bin or "data-bin/multi30k-de-en")
    main_test = MULTI30K_TESTS[0][0]
    prepared = prepare_corpus(
        files["train.de"], files["train.en"], src_lang="de", tgt_lang="en",
        valid_src=files["valid.de"], valid_tgt=files["valid.en"],
        test_src=files[f"{main_test}.de"], test_tgt=files[f"{main_test}.en"],
        out=data_bin, spm_vocab=4000, root=Path("data/work"), name="multi30k-de-en",
        extra_train=[TrainPart("rwth-gold-text", gold_de, gold_en, GOLD_COPIES)],
    )
    test_sets = {main_test: TestSet("test", prepared.test_reference)}
    for index, (name, _) in enumerate(MULTI30K_TESTS[1:], 1):
        reference = add_test_set(prepared, f"test{index}", files[f"{name}.de"], files[f"{name}.en"])
        test_sets[name] = TestSet(f"test{index}", reference)
    tokenised = [_moses_tokenised(files[f"train.{lang}"], work / f"train.tok.{lang}", lang) for lang in ("de", "en")]
    aligners = [AlignerTraining("the gold text only (508 pairs)"),
                AlignerTraining("the gold text + Multi30k train, Moses-tokenised (29,508 pairs)", *tokenised)]
    return ExperimentSpec(
        name="multi30k-de-en", aligner_training=aligners, data_bin=prepared.data_bin, spm_model=prepared.spm_model, test_sets=test_sets,
        out_dir=Path(args.out or "results/multi30k-de-en"),
        variants=args.variants or VARIANTS, seeds=args.seeds or (1,),
        seed_plan={} if args.seeds else MULTI30K_SEEDS, arch="sparse_transformer_tiny",
        # d_model 128, FFN 512, 3+3 layers, 4 heads: ~2.6M parameters, about an hour per run on one CPU core
        arch_args=["--share-all-embeddings", "--encoder-embed-dim", "128", "--decoder-embed-dim", "128",
                   "--encoder-ffn-embed-dim", "512", "--decoder-ffn-embed-dim", "512",
                   "--encoder-layers", "3", "--decoder-layers", "3"],
        train_args=["--lr", "0.002", "--warmup-updates", "150", "--max-tokens", "4096", "--dropout", "0.2"],
        max_update=args.max_update or MULTI30K_MAX_UPDATE, patience=8, valid_bleu=True, keep_last_epochs=5,
        checkpoint=args.checkpoint or "best", gold=gold, beam=4,
        checkpoint_root=Path(args.checkpoint_root), on_change=args.on_change,
        notes=[
            "Data: Multi30k task 1 De-En (29,000 training pairs) plus the text of the RWTH De-En gold "
            f"alignment set (508 Europarl pairs, no links) upsampled {GOLD_COPIES}x; SentencePiece 4k joint (BPE) "
            "on that training text. Multi30k and the RWTH set are not redistributable: only results are committed.",
            "Validation: Multi30k val (1,014 pairs). Tests: test_2016_flickr (1,000, main), test_2017_flickr "
            "(1,000), test_2017_mscoco (461); none of them is seen in training.",
            "AER: RWTH De-En gold (508 sentences, 1-based, sure + possible), on text the models were trained on.",
            "ReLA as in the authors' code (bzhangGo/zero, modules/rela.py), checked step by step: queries scaled by "
            "d_head^-1/2; masked keys score 0 (padded keys zeroed; future positions -inf, ReLU 0: the weights of "
            "multiplicative masking); ReLU, no row normalisation; attention dropout on the weights (0 here, for every "
            "variant); weights x V, heads concatenated; gated RMS norm over d_model (scale 1, gate U(+-sqrt(3/d)), "
            "eps 1e-8); output projection; in all three sublayers, post-norm. `tests/test_rela_authors_formulation.py` "
            "checks that outputs and gradients equal a float64 transcription of the authors' `dot_attention`, in "
            "all three sublayers, in training (dropout) and in incremental decoding. Learning rate and warmup at a "
            "fixed budget: [sweep/summary.md](sweep/summary.md).",
        ],
    )


def _moses_tokenised(source: Path, destination: Path, lang: str) -> Path:
    """Moses tokenisation (sacremoses, no escaping) for the statistical aligners, written once, atomically."""
    if not destination.exists():
        from sacremoses import MosesTokenizer

        tokenizer = MosesTokenizer(lang=lang)
        lines = source.read_text(encoding="utf-8").splitlines()
        atomic_write_text(destination, "".join(tokenizer.tokenize(line, escape=False, return_str=True) + "\n"
                                               for line in lines))
    return destination


def _split_parallel_text(text: Path, source: Path, target: Path) -> tuple[Path, Path]:
    """'src ||| tgt' lines -> two files (the gold set's tokens as they are), written atomically."""
    from alignment_eval import read_parallel_text

    pairs = read_parallel_text(text)
    atomic_write_text(source, "".join(" ".join(p.source) + "\n" for p in pairs))
    atomic_write_text(target, "".join(" ".join(p.target) + "\n" for p in pairs))
    return source, target


PRESETS = {"demo": demo_spec, "multi30k": multi30k_spec}

# Learning-rate and warmup sweep at a fixed budget (issue #10: does a ReLA gap close with other settings?).
# The centre is multi30k's own setting (lr 0.002, warmup 150); three values of each, five settings in all.
SWEEP_SETTINGS = ((0.001, 150), (0.002, 150), (0.004, 150), (0.002, 500), (0.002, 1000))
SWEEP_UPDATES = 2000


def sweep_setting_name(lr: float, warmup: int) -> str:
    """The folder and table key of one sweep setting: ``lr0.002-warmup150``."""
    return f"lr{lr:g}-warmup{warmup}"


def sweep_verdicts(test: Dict[Tuple[str, str], Optional[float]], settings: Sequence[str],
                   variants: Sequence[str], reference: str = "softmax") -> List[str]:
    """Verdict lines of the learning-rate/warmup sweep from ``test[(setting, variant)]`` (test2016
    BLEU, None: not finished): each variant's best setting, and its gap to ``reference`` at every
    setting and best against best. Stated as incomplete until every setting of both has finished."""
    lines = []
    for variant in variants:
        if variant == reference:
            continue
        pairs = [(name, test.get((name, variant)), test.get((name, reference))) for name in settings]
        finished = [(name, ours, theirs) for name, ours, theirs in pairs if None not in (ours, theirs)]
        if len(finished) < len(settings):
            lines.append(f"- **{variant} against {reference}:** incomplete, {len(finished)} of {len(settings)} "
                         "settings finished for both; no verdict yet.")
            continue
        gaps = [ours - theirs for _, ours, theirs in finished]
        best_ours = max(finished, key=lambda row: row[1])
        best_theirs = max(finished, key=lambda row: row[2])
        if max(gaps) < 0:
            where, conclusion = "below", " The setting does not close the gap at this budget."
        elif min(gaps) > 0:
            where, conclusion = "above", ""
        else:
            where, conclusion = "on both sides of", " The gap depends on the setting."
        lines.append(
            f"- **{variant} against {reference}:** {variant} is {where} {reference} at every setting "
            f"(gaps {min(gaps):+.2f} to {max(gaps):+.2f} BLEU). Best setting of {variant}: {best_ours[0]} "
            f"({best_ours[1]:.2f}); of {reference}: {best_theirs[0]} ({best_theirs[2]:.2f}); best against best: "
            f"{best_ours[1] - best_theirs[2]:+.2f}.{conclusion}")
    return lines


def multi30k_sweep(args, command: str) -> Path:
    """softmax and rela (or ``--variants``) x SWEEP_SETTINGS, each for exactly SWEEP_UPDATES updates
    (no early stopping, last checkpoint), on the multi30k data -> results/multi30k-de-en/sweep/:
    one row per setting with each variant's test2016 BLEU, the gap to softmax and the validation
    scores, and the validation curves of every run in one figure."""
    from .curves import History, ValidPoint, plot_curves
    from .experiment import run_experiment
    from .summary import collect

    base = multi30k_spec(args)
    root = Path(args.out or "results/multi30k-de-en") / "sweep"
    variants = args.variants or ("softmax", "rela")
    updates = args.max_update or SWEEP_UPDATES
    cells, curves = {}, {}
    for lr, warmup in SWEEP_SETTINGS:
        name = sweep_setting_name(lr, warmup)
        train_args = list(base.train_args)
        train_args[train_args.index("--lr") + 1] = f"{lr:g}"
        train_args[train_args.index("--warmup-updates") + 1] = str(warmup)
        spec = replace(base, name=f"multi30k-de-en-sweep-{name}", out_dir=root / name, train_args=train_args,
                       variants=variants, seeds=args.seeds or (1,), seed_plan={},
                       max_update=updates, patience=None, checkpoint="last", gold=None,
                       test_sets=dict(list(base.test_sets.items())[:1]), aligner_training=())
        run_experiment(spec, command, train_only=args.train_only,
                       finished_only=args.finished_only, jobs=args.jobs or 1)
        for result in collect(spec):
            valid = (result.train or {}).get("history", {}).get("valid", [])
            if valid:
                curves[f"{result.variant} lr {lr:g} wu {warmup}"] = [History(valid=[ValidPoint(**p) for p in valid])]
            cells[(name, result.variant, result.seed)] = (valid[-1] if valid else {},
                                                           result.bleu["test2016"].bleu if "test2016" in result.bleu else None)
    header = ["lr", "warmup", *(f"{v} test2016" for v in variants),
              *(f"{v} - softmax" for v in variants if v != "softmax"), *(f"{v} valid BLEU / NLL" for v in variants)]
    rows = []
    lines = ["# Multi30k De-En: learning rate and warmup at a fixed budget", "", f"Command: `{command}`", "",
             f"Every run: the multi30k architecture and data, exactly {updates} updates (no early stopping), "
             f"last checkpoint, beam 4, sacreBLEU on test2016; seed {', '.join(map(str, args.seeds or (1,)))}; "
             "validation BLEU greedy, NLL in bits per token. Only the learning rate (peak of the inverse-sqrt "
             "schedule) and the warmup change; the centre row is the main experiment's setting.", ""]
    for lr, warmup in SWEEP_SETTINGS:
        name = sweep_setting_name(lr, warmup)
        for seed in args.seeds or (1,):
            test = {v: cells.get((name, v, seed), ({}, None))[1] for v in variants}
            valid = {v: cells.get((name, v, seed), ({}, None))[0] for v in variants}
            row = [f"{lr:g}", str(warmup)] + [f"{test[v]:.2f}" if test[v] is not None else "not finished"
                                               for v in variants]
            for v in variants:
                if v != "softmax":
                    gap = test[v] - test["softmax"] if None not in (test[v], test.get("softmax")) else None
                    row.append(f"{gap:+.2f}" if gap is not None else "-")
            row += [f"{valid[v].get('bleu', '-')} / {valid[v].get('nll_loss', '-')}" if valid[v] else "-"
                    for v in variants]
            rows.append(row)
    lines.append(markdown_table(header, rows))
    for seed in args.seeds or (1,):
        names = [sweep_setting_name(lr, warmup) for lr, warmup in SWEEP_SETTINGS]
        verdicts = sweep_verdicts({(name, v): cells.get((name, v, seed), ({}, None))[1]
                                   for name in names for v in variants}, names, variants)
        if verdicts:
            lines += ["", f"Verdicts (test2016, seed {seed}; one run per setting, so seed-to-seed spread is not "
                      "part of these gaps):", "", *verdicts]
    if curves:
        plot_curves(curves, root / "curves.png", title=f"Multi30k De-En sweep, {updates} updates")
        lines += ["", "![validation curves of every run](curves.png)"]
    lines.append("")
    atomic_write_text(root / "summary.md", "\n".join(lines))
    return root / "summary.md"


def interpret_multi30k(args) -> Path:
    """The interpretability battery on every finished Multi30k variant (after ``multi30k``).

    Teacher-forced on the first ``--interpret-sentences`` pairs of test_2016_flickr (in domain),
    with each variant's first seed; the seeds test uses all of its finished seeds (two or more).
    Writes results/multi30k-de-en/<variant>/seed<N>/interpret/ and results/multi30k-de-en/interpret.md.
    """
    from .experiment import interpret_battery
    from .spec import runs_of
    from .prepare import PreparedData
    from .training import DONE_FILE

    spec = multi30k_spec(args)
    prepared = PreparedData.load(spec.data_bin)
    sources = prepared.test_source.read_text(encoding="utf-8").splitlines()
    targets = prepared.test_reference.read_text(encoding="utf-8").splitlines()
    text = spec.out_dir / "interpret-text.de-en"
    atomic_write_text(text, "".join(f"{s.strip()} ||| {t.strip()}\n" for s, t in zip(sources, targets)))
    command = reproducing_command(["interpret-multi30k", *sys.argv[2:]])
    sections = [f"# Interpretability battery: {spec.name}", "", f"Command: `{command}`", "",
                f"Text: the first {args.interpret_sentences} pairs of Multi30k test_2016_flickr (teacher forcing), "
                f"with each variant's {spec.checkpoint} checkpoint of its first finished seed; adversarial fine-tuning: "
                "100 steps per lambda; co-index attribution estimated with 16 random projections; the seeds test "
                "compares every pair of the variant's finished seeds (only for variants with two or more). "
                "Per-variant details, figures and JSON in `<variant>/seed<N>/interpret/`.", ""]
    for variant in spec.variants:
        finished = [r for r in runs_of(spec) if r.variant == variant and (r.save_dir / DONE_FILE).is_file()]
        if not finished:
            sections += [f"## {variant}", "", "not trained yet", ""]
            continue
        log(f"[{variant}] interpretability battery ({len(finished)} seed(s))")
        report = interpret_battery(finished[0], text, seed_runs=finished, max_sentences=args.interpret_sentences)
        body = report.read_text(encoding="utf-8")
        seeds_note = "" if len(finished) >= 2 else "\n\nSeeds test: not run (one finished seed).\n"
        sections += [f"## {variant} (seed {finished[0].seed}; seeds {', '.join(str(r.seed) for r in finished)})", "",
                     (body.split("\n", 1)[1] if body.startswith("# ") else body) + seeds_note, ""]
    report = spec.out_dir / "interpret.md"
    atomic_write_text(report, "\n".join(sections))
    return report


def reproducing_command(argv: Sequence[str]) -> str:
    """The command line as a report shows it, with the environment settings that changed its paths."""
    settings = [f"{name}={os.environ[name]}" for name in ("CHECKPOINT_ROOT", "GOLD_DIR", "MULTI30K_DIR")
                if os.environ.get(name)]
    return shlex.join([*settings, "python", "-m", "mt_pipeline.runs", *argv])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mt_pipeline.runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", choices=sorted([*PRESETS, "interpret-multi30k", "multi30k-sweep"]))
    parser.add_argument("--interpret-sentences", type=int, default=60)
    parser.add_argument("--max-len-b", type=int, help="cap translations at N tokens (smoke runs of barely trained models)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="train every variant once per seed (default: 1; multi30k: 1 2 3 for softmax, rela, "
                             "entmax15 and 1 for the others)")
    parser.add_argument("--max-update", type=int, help="training updates per variant (preset default otherwise)")
    parser.add_argument("--checkpoint", help="evaluate this checkpoint: best (validation BLEU), last, average-last-N "
                        "(preset default otherwise)")
    parser.add_argument("--checkpoint-root", default=os.environ.get("CHECKPOINT_ROOT", "checkpoints"),
                        help="checkpoints go to ROOT/<preset>/<variant>/seed<N> (default: checkpoints, or $CHECKPOINT_ROOT)")
    parser.add_argument("--on-change", choices=("refuse", "rerun"), default="refuse",
                        help="a checkpoint folder trained with other settings: refuse (default), or keep it aside and train again")
    parser.add_argument("--train-only", action="store_true", help="train (or resume) the runs, evaluate nothing")
    parser.add_argument("--finished-only", action="store_true",
                        help="evaluate and report only the runs whose training has finished (the rest are listed as pending)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="training runs at a time, one thread each (default: 2 for demo, 1 otherwise)")
    parser.add_argument("--out", help="results folder (default results/<preset>)")
    parser.add_argument("--data-bin", help="binarized data folder (default data-bin/<preset>)")
    parser.add_argument("--gold-dir", default=os.environ.get("GOLD_DIR", str(SHARED / "word-alignment-gold")))
    parser.add_argument("--multi30k-dir", default=os.environ.get("MULTI30K_DIR", str(SHARED / "multi30k")))
    add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(verbosity(args), "mt_pipeline")
    command = reproducing_command(argv if argv is not None else sys.argv[1:])
    try:
        if args.preset == "multi30k-sweep":
            print(multi30k_sweep(args, command).read_text())
            return 0
        if args.preset == "interpret-multi30k":
            print(interpret_multi30k(args).read_text())
            return 0
        spec = PRESETS[args.preset](args)
        if args.max_len_b is not None:
            spec.generate_args = ["--max-len-a", "0", "--max-len-b", str(args.max_len_b)]
        run_experiment(spec, command, train_only=args.train_only, finished_only=args.finished_only,
                       jobs=args.jobs or (2 if args.preset == "demo" else 1))
    except Exception as exc:  # noqa: BLE001 - one clear line for the user, the log has the details
        from .errors import PipelineError

        if isinstance(exc, (PipelineError, RuntimeError, ValueError, OSError)):
            print(f"mt_pipeline.runs: error: {exc}", file=sys.stderr)
            return 2
        raise
    if not args.train_only:
        print((spec.out_dir / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
