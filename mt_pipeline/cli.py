"""Command line: ``python -m mt_pipeline {data,prepare,pairs} ...``.

Every PipelineError is printed as ``error: MESSAGE`` on stderr, with exit status 2
(the same status argparse uses for bad options); no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nmt_common.logs import add_verbosity_arguments, setup_logging, verbosity

from .clean import CleanConfig
from .errors import PipelineError
from .prepare import LOCAL_STEPS, STEPS


def _coverage(values) -> dict:
    coverage = {}
    for value in values or ():
        lang, sep, number = value.partition("=")
        try:
            coverage[lang] = float(number)
        except ValueError:
            sep = ""
        if not sep or not lang:
            raise PipelineError(f"--character-coverage wants LANG=VALUE (e.g. zh=0.9995), not {value!r}")
    return coverage


def _shared_options(parser: argparse.ArgumentParser, *, vocab_default) -> None:
    spm = parser.add_argument_group("SentencePiece")
    spm.add_argument("--spm-vocab", type=int, default=vocab_default, metavar="N",
                     help="vocabulary size (per model when separate)"
                          + (f" (default {vocab_default})" if vocab_default else " (default: the manifest's)"))
    vocab = spm.add_mutually_exclusive_group()
    vocab.add_argument("--joint", dest="joint", action="store_true", default=None,
                       help="one model for both languages, joined fairseq dictionary")
    vocab.add_argument("--separate", dest="joint", action="store_false",
                       help="one model per language, separate dictionaries")
    spm.add_argument("--character-coverage", action="append", metavar="LANG=VALUE",
                     help="per language (default 0.9995 for zh/ja, 1.0 otherwise); repeatable")
    spm.add_argument("--spm-model-type", choices=["bpe", "unigram", "char", "word"], default=None,
                     help="default bpe (the paper used joint BPE)")
    spm.add_argument("--spm-sample", type=int, default=5_000_000, metavar="N",
                     help="train on a random sample of N sentences when there are more (0: all; default 5M)")
    clean = parser.add_argument_group("cleaning (training data only)")
    clean.add_argument("--min-len", type=int, default=1, help="minimum tokens per side (default 1)")
    clean.add_argument("--max-len", type=int, default=250, help="maximum tokens per side (default 250)")
    clean.add_argument("--ratio", type=float, default=9.0,
                       help="maximum length ratio between the sides (default 9, as Moses clean-corpus-n)")
    clean.add_argument("--no-dedup", dest="dedup", action="store_false", help="keep duplicate pairs")
    clean.add_argument("--no-normalize-punct", dest="normalize_punct", action="store_false",
                       help="skip Moses punctuation normalisation")
    parser.add_argument("--max-train-lines", type=int, metavar="N",
                        help="use only the first N pairs of each training corpus (quick runs)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes/threads for cleaning, SentencePiece and fairseq-preprocess")
    parser.add_argument("--root", type=Path, default=Path("data/work"),
                        help="work folder for downloads and intermediate files (default data/work)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mt_pipeline", description=__doc__.split("\n")[0])
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser(
        "data", help="prepare a WMT direction of the ReLA paper from its manifest",
        description="download -> extract -> clean -> spm -> encode -> binarize, each step skipped when complete",
    )
    data.add_argument("--pair", required=True, help="en-de, en-fr, ro-en, en-fi or zh-en")
    data.add_argument("--out", type=Path, help="binarized output (default data-bin/PAIR)")
    data.add_argument("--steps", help=f"comma-separated subset of: {','.join(STEPS)} (default all)")
    data.add_argument("--from-dir", type=Path, metavar="DIR",
                      help="use archives / dev-test files found in DIR (or DIR/SRC-TGT) instead of downloading")
    data.add_argument("--offline", action="store_true", help="never download: what --from-dir lacks is an error")
    data.add_argument("--manifest-dir", type=Path, help="folder of <pair>.json manifests (default data/manifests)")
    sums = data.add_mutually_exclusive_group()
    sums.add_argument("--record-checksums", action="store_true",
                      help="write the sha256 of archives without a known sum to data/manifests/PAIR.lock.json")
    sums.add_argument("--require-checksums", action="store_true",
                      help="refuse any archive whose sha256 is not in the manifest or its lock file")
    data.add_argument("--skip-manual", action="store_true",
                      help="go on without manual corpora (CWMT for zh-en) that are not provided")
    data.add_argument("--retries", type=int, default=3, help="resumed attempts after a dropped connection")
    _shared_options(data, vocab_default=None)

    prepare = commands.add_parser(
        "prepare", help="local parallel files -> fairseq data-bin with a SentencePiece model",
        description="clean -> spm -> encode -> binarize on local files (plain or .gz)",
    )
    prepare.add_argument("--src", type=Path, required=True, help="training source file")
    prepare.add_argument("--tgt", type=Path, required=True, help="training target file")
    prepare.add_argument("--src-lang", required=True)
    prepare.add_argument("--tgt-lang", required=True)
    prepare.add_argument("--valid-src", type=Path, required=True)
    prepare.add_argument("--valid-tgt", type=Path, required=True)
    prepare.add_argument("--test-src", type=Path)
    prepare.add_argument("--test-tgt", type=Path, help="raw test reference (kept as DATA_BIN/test.raw.TGT for BLEU)")
    prepare.add_argument("--out", type=Path, required=True, help="binarized output folder, e.g. data-bin/NAME")
    prepare.add_argument("--work", type=Path, help="intermediate files (default ROOT/prepare-NAME)")
    prepare.add_argument("--steps", help=f"comma-separated subset of: {','.join(LOCAL_STEPS)} (default all)")
    prepare.add_argument("--sacrebleu-test-set", help="sacreBLEU name of the test set, recorded in prepare.json")
    _shared_options(prepare, vocab_default=8000)

    pairs = commands.add_parser("pairs", help="list the WMT directions that have a manifest")
    pairs.add_argument("--manifest-dir", type=Path)
    return parser


def _common(args) -> dict:
    return dict(
        clean=CleanConfig(min_len=args.min_len, max_len=args.max_len, ratio=args.ratio, dedup=args.dedup,
                          normalize_punct=args.normalize_punct),
        character_coverage=_coverage(args.character_coverage),
        spm_sample=args.spm_sample,
        max_train_lines=args.max_train_lines,
        workers=max(1, args.workers),
        root=args.root,
    )


def run(args) -> int:
    if args.command == "pairs":
        from .manifest import available_pairs, load_manifest

        for pair in available_pairs(args.manifest_dir):
            manifest = load_manifest(pair, args.manifest_dir)
            corpora = ", ".join(s.name + (" (manual)" if s.manual else "") for s in manifest.train)
            print(f"{pair}\t{manifest.campaign}\ttrain: {corpora}\tvalid: {manifest.valid.name}\t"
                  f"test: {manifest.test.name} (sacrebleu {manifest.test.sacrebleu_test_set})")
        return 0
    if args.command == "data":
        from .wmt import run_data_pipeline

        result = run_data_pipeline(
            args.pair, out=args.out, steps=args.steps, from_dir=args.from_dir, offline=args.offline,
            manifest_dir=args.manifest_dir, record_checksums=args.record_checksums,
            require_checksums=args.require_checksums, skip_manual=args.skip_manual, spm_vocab=args.spm_vocab,
            joint=args.joint, spm_model_type=args.spm_model_type, retries=args.retries, **_common(args),
        )
    else:
        from .prepare import prepare_corpus

        common = _common(args)
        result = prepare_corpus(
            args.src, args.tgt, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
            valid_src=args.valid_src, valid_tgt=args.valid_tgt, test_src=args.test_src, test_tgt=args.test_tgt,
            out=args.out, work=args.work, steps=args.steps, spm_vocab=args.spm_vocab,
            joint=True if args.joint is None else args.joint, spm_model_type=args.spm_model_type or "bpe",
            sacrebleu_test_set=args.sacrebleu_test_set, **common,
        )
    if result is not None:
        print(result.data_bin)
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbosity(args), "mt_pipeline")
    try:
        return run(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permission denied...: the message names the file
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
