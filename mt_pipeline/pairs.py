"""Per-direction steps after training: ``python -m mt_pipeline.pairs {translate,bleu,align,report} --pair en-de``.

The Makefile targets ``translate``, ``bleu``, ``align`` and ``report`` call these; paths follow
the Hydra configs in ``configs/``: data in ``data-bin/<config>``, checkpoints in
``checkpoints/<config>/<attention>``, outputs in ``results/<config>/<attention>``.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from nmt_common.files import atomic_write_text
from nmt_common.logs import add_verbosity_arguments, setup_logging, verbosity
from nmt_common.markdown import markdown_table
from nmt_common.variants import VARIANTS

from .errors import PipelineError, PipelineRecord

ROOT = Path(__file__).resolve().parents[1]
GOLD_DIR = ROOT.parent / "shared" / "data" / "word-alignment-gold"


@dataclass(frozen=True)
class Direction:
    pair: str  # e.g. en-de: source-target of the model
    config: str  # configs/<config>.yaml, data-bin/<config>
    gold: Optional[str] = None  # word-alignment-gold/<gold>.{src-tgt,gold}
    gold_reversed: bool = False  # the gold text's target side is the model's source


DIRECTIONS = {
    d.pair: d
    for d in (
        Direction("en-de", "wmt14_en_de", gold="deen", gold_reversed=True),
        Direction("en-fr", "wmt14_en_fr", gold="enfr"),
        Direction("ro-en", "wmt16_ro_en", gold="roen"),
        Direction("en-fi", "wmt18_en_fi"),  # no public English-Finnish gold alignment exists
        Direction("zh-en", "wmt18_zh_en", gold="zhen"),
    )
}


def direction(pair: str) -> Direction:
    if pair not in DIRECTIONS:
        raise PipelineError(f"unknown language pair {pair!r}; valid pairs: {', '.join(DIRECTIONS)}")
    return DIRECTIONS[pair]


def run_folder(attn: str, seed: Optional[int]) -> Path:
    """``<variant>``, or ``<variant>/seed<N>`` for one seed of ``make sweep SEEDS=...``: under the
    checkpoint root and the results folder alike."""
    return Path(attn) / f"seed{seed}" if seed is not None else Path(attn)


def _checkpoint(args, d: Direction) -> Path:
    seed = getattr(args, "seed", None)
    folder = Path(args.checkpoints) / d.config / run_folder(args.attn, seed)
    for name in ("checkpoint.avg.pt", "checkpoint_best.pt", "checkpoint_last.pt"):
        if (folder / name).is_file():
            return folder / name
    made_by = (f"make sweep PAIR={d.pair} ATTN={args.attn} SEEDS={seed}" if seed is not None
               else f"make train PAIR={d.pair} ATTN={args.attn}")
    raise PipelineError(f"{folder}: no checkpoint (train first: {made_by})")


def _prepared(args, d: Direction):
    from .prepare import PreparedData

    return PreparedData.load(Path(args.data_bin or f"data-bin/{d.config}"))


def _out(args, d: Direction) -> Path:
    return Path(args.results) / d.config / run_folder(args.attn, getattr(args, "seed", None))


def run_translate(args) -> int:
    from .translate import TranslationError, translate

    d = direction(args.pair)
    prepared = _prepared(args, d)
    try:
        result = translate(prepared.data_bin, _checkpoint(args, d), _out(args, d) / "test.hyp", beam=args.beam,
                           batch_size=args.batch_size)
    except TranslationError as error:
        raise PipelineError(str(error)) from None
    result.write_record(_out(args, d) / "translate.json")
    print(f"{result.sentences} sentences -> {result.output} ({result.sentences_per_second} sentences/s)")
    return 0


def run_bleu(args) -> int:
    from .bleu import BleuInputError, score

    d = direction(args.pair)
    prepared = _prepared(args, d)
    hypotheses = _out(args, d) / "test.hyp"
    try:
        if prepared.sacrebleu_test_set and not args.reference:
            try:
                result = score(hypotheses, test_set=prepared.sacrebleu_test_set, langpair=prepared.sacrebleu_langpair)
            except BleuInputError:  # not cached (no internet): the raw reference kept by prepare
                result = score(hypotheses, prepared.test_reference, langpair=d.pair)
        else:
            result = score(hypotheses, Path(args.reference) if args.reference else prepared.test_reference,
                           langpair=d.pair)
    except BleuInputError as error:
        raise PipelineError(str(error)) from None
    result.write(_out(args, d) / "bleu.json")
    print(f"BLEU {result.bleu:.2f}  chrF {result.chrf:.2f}  {result.signature}  (references: {result.references})")
    return 0


def run_align(args) -> int:
    d = direction(args.pair)
    if d.gold is None:
        raise PipelineError(f"no gold word alignment for {d.pair}; nothing to align")
    gold_dir = Path(args.gold_dir)
    text, gold = gold_dir / f"{d.gold}.src-tgt", gold_dir / f"{d.gold}.gold"
    if not (text.is_file() and gold.is_file()):
        raise PipelineError(f"{gold}: gold alignment not found (set GOLD_DIR to the word-alignment-gold folder)")
    prepared = _prepared(args, d)
    src, tgt = d.pair.split("-")
    spm = ["--source-spm", prepared.spm_models[src], "--target-spm", prepared.spm_models[tgt]]
    model = ["--checkpoint", _checkpoint(args, d), "--data-dir", prepared.data_bin, *spm, "--text", text]
    model += ["--reverse"] if d.gold_reversed else []
    out = _out(args, d) / "attention"
    binary = Path(sys.executable).with_name("alignment-eval")
    for command in (
        [binary, "stats", *model, "--out-dir", out],
        [binary, "extract", *model, "--gold", gold, "--gold-one-based", "--out-dir", out],
    ):
        result = subprocess.run(list(map(str, command)))
        if result.returncode != 0:
            raise PipelineError(f"{shlex.join(map(str, command))} failed with status {result.returncode}")
    return 0


_LOG_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")  # Hydra's "[2026-01-31 12:00:00,123][...]"
_EPOCH_WPS = re.compile(r"\]\[train\]\[INFO\] - epoch \d+ \|.*?\| wps ([\d.]+)")  # fairseq's end-of-epoch record
_SESSION_START = "][fairseq_cli.train][INFO] - {"  # fairseq-train's first line: its whole configuration


def training_logs(folder: Path) -> List[Path]:
    """fairseq-hydra-train's logs of the run whose checkpoints are in ``folder``, oldest first:
    ``hydra/<time>/hydra_train.log``, one per session of ``make train`` (configs/base/transformer_base.yaml),
    then the job's own ``hydra_train.log`` of ``make sweep``, which every resume appends to."""
    logs = sorted(folder.glob("hydra/*/hydra_train.log"))
    return logs + ([folder / "hydra_train.log"] if (folder / "hydra_train.log").is_file() else [])


def training_speed(folder: Path) -> Dict[str, Optional[float]]:
    """Mean words/s of the end-of-epoch records and training wall time, from the run's Hydra logs
    (:func:`training_logs`). Time is the span of each session's timestamps, summed: fairseq's own
    ``train_wall`` and "done training in" restart at every resume, and a killed session prints neither."""
    wps: List[float] = []
    spans: List[float] = []
    for log in training_logs(folder):
        first = last = None
        for number, line in enumerate(log.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            stamp = _LOG_STAMP.match(line)
            if stamp is None:
                continue  # continuation lines of a multi-line message (the model's repr)
            try:
                moment = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise PipelineError(f"{log}:{number}: not a date and time: {stamp.group(1)!r}") from None
            if _SESSION_START in line and first is not None:  # a resume appended to the same log
                spans.append((last - first).total_seconds())
                first = None
            first = first or moment
            last = moment
            found = _EPOCH_WPS.search(line)
            if found:
                wps.append(float(found.group(1)))
        if first is not None:
            spans.append((last - first).total_seconds())
    return {"train_wps": sum(wps) / len(wps) if wps else None, "train_seconds": sum(spans) if spans else None}


@dataclass(frozen=True)
class BestHead:
    """Where a variant's lowest AER is: the ``best`` entry of its ``aer.json``, shortened."""

    aer: float
    layer: int
    head: Union[int, str]  # 1-based head or "avg"


@dataclass(frozen=True)
class PairRow:
    """One variant of a language pair: a row of ``results/<config>/report.json`` (and of ``report.md``).

    Speeds: ``train_wps`` target words/s over training, ``decode_sentences_per_second`` while translating
    the test set. Attention numbers are the teacher-forced ``stats.json``/``aer.json`` on the gold set.
    None: that step has not run for this variant."""

    variant: str
    train_wps: Optional[float] = None
    train_seconds: Optional[float] = None
    decode_sentences_per_second: Optional[float] = None
    bleu: Optional[float] = None
    chrf: Optional[float] = None
    bleu_signature: Optional[str] = None
    sparsity_cross: Optional[float] = None
    null_rate_cross: Optional[float] = None
    js_diversity_cross: Optional[float] = None
    sparsity_all: Optional[float] = None  # mean over encoder, decoder and cross-attention
    null_rate_all: Optional[float] = None
    alpha: Optional[Dict[str, List[float]]] = None  # learned alpha per alpha_entmax module and head
    aer_best: Optional[Dict[str, BestHead]] = None  # "<method>.<normal|shift>.<best-head|avg>" -> best


@dataclass(frozen=True)
class PairReport(PipelineRecord):
    """``results/<config>/report.json`` of ``python -m mt_pipeline.pairs report``."""

    pair: str
    rows: List[PairRow]


def row_from_outputs(variant: str, folder: Path, checkpoints: Optional[Path] = None) -> PairRow:
    """One summary row from a variant's output folder (translate.json, bleu.json, attention/) and,
    when given, its checkpoint folder (training speed and time from the Hydra logs there)."""
    found: dict = dict(training_speed(checkpoints)) if checkpoints is not None else {}
    if (folder / "translate.json").is_file():
        from .translate import TranslationError, TranslationRecord

        try:
            found["decode_sentences_per_second"] = TranslationRecord.read(folder / "translate.json").sentences_per_second
        except TranslationError as error:
            raise PipelineError(str(error)) from None
    if (folder / "bleu.json").is_file():
        from .bleu import BleuInputError, BleuRecord

        try:
            scores = BleuRecord.read(folder / "bleu.json")
        except BleuInputError as error:
            raise PipelineError(str(error)) from None
        found.update(bleu=scores.bleu, chrf=scores.chrf, bleu_signature=scores.signature)
    stats_file, aer_file = folder / "attention" / "stats.json", folder / "attention" / "aer.json"
    from alignment_eval.alignments.records import AerReport, StatsReport

    from .summary import read_alignment_record

    if stats_file.is_file():
        stats = read_alignment_record(StatsReport, stats_file)
        cross = stats.overall("cross")
        found.update(
            sparsity_cross=cross.sparsity,
            null_rate_cross=cross.null_rate,
            js_diversity_cross=cross.js_diversity,
            sparsity_all=_mean(stats.overall(s).sparsity for s in ("encoder", "decoder", "cross")),
            null_rate_all=_mean(stats.overall(s).null_rate for s in ("encoder", "decoder", "cross")),
            alpha=stats.alpha or None,
        )
    if aer_file.is_file():
        aer = read_alignment_record(AerReport, aer_file)
        found["aer_best"] = {name: BestHead(r.aer, r.layer, r.head) for name, r in aer.best.items()}
    return PairRow(variant=variant, **found)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary_table(rows: List[PairRow]) -> List[str]:
    """Markdown table: BLEU, speed (and ratio to softmax), AER, sparsity, null rate, head diversity."""
    softmax = next((r for r in rows if r.variant == "softmax"), None)
    with_attention = any(r.aer_best is not None or r.sparsity_cross is not None for r in rows)
    header = ["variant", "BLEU", "chrF", "train words/s", "train hours", "decode sent/s"]
    if with_attention:
        header += ["AER argmax normal (layer, head)", "AER argmax shift (layer, head)", "AER head-avg normal",
                   "sparsity (cross)", "null rate (cross)", "JS diversity (cross)", "sparsity (all)", "null rate (all)"]

    def with_ratio(row: PairRow, key: str, digits: int) -> str:
        value = getattr(row, key)
        text = _fmt(value, digits)
        reference = getattr(softmax, key) if softmax else None
        if softmax and row is not softmax and reference and value:
            text += f" ({value / reference:.2f}x)"
        return text

    table = []
    for row in rows:
        hours = row.train_seconds / 3600 if row.train_seconds is not None else None
        cells = [row.variant, _fmt(row.bleu, 2), _fmt(row.chrf, 2), with_ratio(row, "train_wps", 0), _fmt(hours, 2),
                 with_ratio(row, "decode_sentences_per_second", 1)]
        if with_attention:
            best = row.aer_best or {}

            def cell(name):
                entry = best.get(name)
                return f"{entry.aer:.3f} ({entry.layer}, {entry.head})" if entry else "-"

            cells += [cell("argmax.normal.best-head"), cell("argmax.shift.best-head"), cell("argmax.normal.avg"),
                      *(_fmt(getattr(row, key)) for key in ("sparsity_cross", "null_rate_cross", "js_diversity_cross",
                                                            "sparsity_all", "null_rate_all"))]
        table.append(cells)
    lines = [*markdown_table(header, table).split("\n"), "", "BLEU signatures:", ""]
    lines += [f"- {r.variant}: `{r.bleu_signature}`" for r in rows if r.bleu_signature]
    return lines


def run_report(args) -> int:
    """One table across every trained variant of the pair: BLEU, AER, sparsity, null rate, diversity, speed."""
    d = direction(args.pair)
    results = Path(args.results) / d.config
    rows = []
    checkpoints = Path(args.checkpoints) / d.config
    for variant in VARIANTS:  # the variant's own folder (make train), then its seeds (make sweep SEEDS=...)
        if (results / variant / "bleu.json").is_file():
            rows.append(row_from_outputs(variant, results / variant, checkpoints / run_folder(variant, None)))
        seeds = sorted((int(f.name[4:]), f) for f in results.glob(f"{variant}/seed*")
                       if f.name[4:].isdigit() and (f / "bleu.json").is_file())
        rows += [row_from_outputs(f"{variant} (seed {seed})", folder, checkpoints / run_folder(variant, seed))
                 for seed, folder in seeds]
    if not rows:
        raise PipelineError(f"{results}: no variant has been scored yet (make bleu PAIR={d.pair})")
    report = "\n".join([f"# {d.pair} ({d.config}): attention variants", "", *summary_table(rows), ""])
    atomic_write_text(results / "report.md", report)
    PairReport(pair=d.pair, rows=rows).write(results / "report.json")
    print(report)
    return 0


def run_explore(args) -> int:
    """One attention-explorer page (``make explore PAIR=en-de ATTN=softmax,rela``): the direction's ATTN
    checkpoints side by side (chosen as ``align`` does) on its gold set, else on its first test pairs
    -> results/<config>/explorer/explorer.html (never committed: it holds the text)."""
    from nmt_common.variants import check_variant

    from .experiment import explorer_test_text
    from .subprocesses import BIN, run_logged

    variants = [v for v in args.attn.split(",") if v]
    for variant in variants:
        try:
            check_variant(variant)
        except ValueError as error:
            raise PipelineError(f"ATTN={args.attn}: {error}") from None
    d = direction(args.pair)
    prepared = _prepared(args, d)
    found = [_checkpoint(argparse.Namespace(checkpoints=args.checkpoints, attn=variant, seed=args.seed), d)
             for variant in variants]
    folder = Path(args.results) / d.config / "explorer"
    if d.gold is not None:
        text, gold = Path(args.gold_dir) / f"{d.gold}.src-tgt", Path(args.gold_dir) / f"{d.gold}.gold"
        if not (text.is_file() and gold.is_file()):
            raise PipelineError(f"{gold}: gold alignment not found (set GOLD_DIR to the word-alignment-gold folder)")
        text_args = ["--text", text, "--gold", gold, "--gold-one-based", *(["--reverse"] if d.gold_reversed else [])]
    else:
        text = explorer_test_text(prepared, folder)
        if text is None:
            raise PipelineError(f"{prepared.data_bin}: no gold alignment for {d.pair} and no test set to show")
        text_args = ["--text", text]
    src, tgt = d.pair.split("-")
    spm_args = []  # one SentencePiece model per side, as align passes them
    for option, lang in (("--source-spm", src), ("--target-spm", tgt)):
        if prepared.spm_models.get(lang) is not None:
            spm_args += [option, prepared.spm_models[lang]]
    page = folder / "explorer.html"
    command = [BIN / "alignment-eval", "explore", "--data-dir", prepared.data_bin, *spm_args, *text_args,
               "--title", f"{d.pair}: {', '.join(variants)}", "--out", page]
    for variant, checkpoint in zip(variants, found):
        command += ["--checkpoint", checkpoint, "--label", variant if args.seed is None else f"{variant} (seed {args.seed})"]
    command += [*(["--sentences", str(args.sentences)] if args.sentences else []), "--bits", str(args.bits),
                *(["--cross-only"] if args.cross_only else [])]
    try:
        run_logged(command, folder / "explore.log")
    except RuntimeError as error:
        raise PipelineError(str(error)) from None
    print(page)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mt_pipeline.pairs", description=__doc__.split("\n\n")[0])
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function in (("translate", run_translate), ("bleu", run_bleu), ("align", run_align),
                           ("report", run_report), ("explore", run_explore)):
        command = commands.add_parser(name)
        command.add_argument("--pair", required=True, help=f"one of {', '.join(DIRECTIONS)}")
        if name == "explore":
            command.add_argument("--attn", required=True, help="variants side by side, separated by commas")
        elif name != "report":
            command.add_argument("--attn", default="softmax", choices=VARIANTS)
        command.add_argument("--data-bin", help="default data-bin/<config>")
        command.add_argument("--checkpoints", default="checkpoints")
        command.add_argument("--results", default="results")
        command.set_defaults(func=function)
        if name == "translate":
            command.add_argument("--beam", type=int, default=4)
            command.add_argument("--batch-size", type=int, default=64)
        if name == "bleu":
            command.add_argument("--reference", help="reference file (default: sacreBLEU's test set, else the raw test reference)")
        if name in ("align", "explore"):
            command.add_argument("--gold-dir", default=str(GOLD_DIR))
        if name != "report":
            command.add_argument("--seed", type=int, help="one seed of make sweep SEEDS=...: "
                                 "<checkpoints>/<config>/<variant>/seed<N> -> <results>/<config>/<variant>/seed<N>")
        if name == "explore":
            command.add_argument("--sentences", type=int, help="the first N pairs of the text (default: all)")
            command.add_argument("--bits", type=int, default=8, help="bits per stored weight (default: 8)")
            command.add_argument("--cross-only", action="store_true", help="cross-attention only (a smaller page)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbosity(args), "mt_pipeline")
    try:
        return args.func(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
