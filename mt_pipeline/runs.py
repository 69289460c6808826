"""Ready-made experiments: ``python -m mt_pipeline.runs demo|multi30k [--variants ...]``.

* ``demo``: the shipped Tatoeba German-English corpus (data/demo, CC BY 2.0 FR) ->
  SentencePiece -> binarize -> tiny softmax and ReLA models -> translate the held-out
  500 sentences -> BLEU -> attention statistics -> AER against the RWTH De-En gold set
  when it is available (``GOLD_DIR``, default ../shared/data/word-alignment-gold; the
  gold is read in place, never copied) -> results/demo/.  About 10 minutes on 2 cores.
* ``multi30k``: Multi30k De-En (read from ``MULTI30K_DIR``, default ../shared/data/multi30k;
  not redistributable, so only results are written) with every attention variant under
  the same budget -> results/multi30k-de-en/.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

from alignment_eval.io import atomic_write_text

from .experiment import ExperimentSpec, GoldSet, run_experiment

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ALL_VARIANTS = ("softmax", "rela", "rela_i", "sparsemax", "entmax15", "alpha_entmax", "topk")


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


def demo_spec(args) -> ExperimentSpec:
    from .prepare import prepare_corpus

    corpus = ROOT / "data" / "demo" / "tatoeba-deu-eng"
    prepared = prepare_corpus(
        corpus / "train.de", corpus / "train.en", src_lang="de", tgt_lang="en",
        valid_src=corpus / "valid.de", valid_tgt=corpus / "valid.en",
        test_src=corpus / "test.de", test_tgt=corpus / "test.en",
        out=Path(args.data_bin or "data-bin/demo-de-en"), spm_vocab=4000, root=Path("data/work"), name="demo-de-en",
    )
    gold = gold_set(Path(args.gold_dir))
    notes = ["Data: 8,000 Tatoeba German-English pairs (data/demo, CC BY 2.0 FR), 500 held-out test pairs."]
    notes.append(f"AER: RWTH De-En gold ({gold.alignment})." if gold else
                 f"AER skipped: no gold set in {args.gold_dir} (set GOLD_DIR).")
    return ExperimentSpec(
        name="demo", data_bin=prepared.data_bin, spm_model=prepared.spm_model,
        test_reference=prepared.test_reference, out_dir=Path(args.out or "results/demo"),
        variants=args.variants or ("softmax", "rela"), arch="sparse_transformer_tiny",
        arch_args=["--share-all-embeddings"],
        train_args=["--lr", "0.002", "--warmup-updates", "200", "--max-tokens", "2048", "--dropout", "0.1"],
        max_update=args.max_update or 400, gold=gold, notes=notes,
    )


def multi30k_spec(args) -> ExperimentSpec:
    from .prepare import prepare_corpus

    source = Path(args.multi30k_dir)
    work = Path("data/work/multi30k")
    files = {f"{split}.{lang}": _gunzip_to(source / f"{name}.{lang}.gz", work / f"{split}.{lang}")
             for split, name in (("train", "train"), ("valid", "val"), ("test", "test_2016_flickr"))
             for lang in ("de", "en")}
    prepared = prepare_corpus(
        files["train.de"], files["train.en"], src_lang="de", tgt_lang="en",
        valid_src=files["valid.de"], valid_tgt=files["valid.en"],
        test_src=files["test.de"], test_tgt=files["test.en"],
        out=Path(args.data_bin or "data-bin/multi30k-de-en"), spm_vocab=4000, root=Path("data/work"),
        name="multi30k-de-en",
    )
    gold = gold_set(Path(args.gold_dir))
    return ExperimentSpec(
        name="multi30k-de-en", data_bin=prepared.data_bin, spm_model=prepared.spm_model,
        test_reference=prepared.test_reference, out_dir=Path(args.out or "results/multi30k-de-en"),
        variants=args.variants or ALL_VARIANTS, arch="sparse_transformer_tiny",
        # d_model 128, FFN 512, 3+3 layers, 4 heads: what trains in minutes per variant on 2 CPU cores
        arch_args=["--share-all-embeddings", "--encoder-embed-dim", "128", "--decoder-embed-dim", "128",
                   "--encoder-ffn-embed-dim", "512", "--decoder-ffn-embed-dim", "512",
                   "--encoder-layers", "3", "--decoder-layers", "3"],
        train_args=["--lr", "0.002", "--warmup-updates", "150", "--max-tokens", "4096", "--dropout", "0.1"],
        max_update=args.max_update or 300, gold=gold,
        notes=[
            "Data: Multi30k task 1 De-En (29,000 training pairs; test_2016_flickr, 1,000 pairs), "
            "SentencePiece 4k joint (BPE). Multi30k is not redistributable: only results are committed.",
            "AER: RWTH De-En Europarl gold (508 sentences), out of domain for a Multi30k model."
            if gold else "AER skipped: no gold set.",
        ],
    )


PRESETS = {"demo": demo_spec, "multi30k": multi30k_spec}


def interpret_multi30k(args) -> Path:
    """The interpretability battery on every trained Multi30k variant (after ``multi30k``).

    Teacher-forced on the first ``--interpret-sentences`` pairs of the Multi30k test set
    (in domain); writes results/multi30k-de-en/<variant>/interpret/ and one combined
    results/multi30k-de-en/interpret.md.
    """
    from .experiment import interpret_battery
    from .prepare import PreparedData

    spec = multi30k_spec(args)
    prepared = PreparedData.load(spec.data_bin)
    sources = prepared.test_source.read_text(encoding="utf-8").splitlines()
    targets = prepared.test_reference.read_text(encoding="utf-8").splitlines()
    text = spec.out_dir / "interpret-text.de-en"
    atomic_write_text(text, "".join(f"{s.strip()} ||| {t.strip()}\n" for s, t in zip(sources, targets)))
    sections = [f"# Interpretability battery: {spec.name}", "",
                f"Command: `{shlex.join(['python', '-m', 'mt_pipeline.runs', 'interpret-multi30k'])}`", "",
                f"Text: the first {args.interpret_sentences} pairs of Multi30k test_2016_flickr (teacher forcing); "
                "adversarial fine-tuning: 100 steps per lambda; co-index attribution estimated with 16 random projections. Per-variant details, figures and JSON in "
                "`<variant>/interpret/`.", ""]
    for variant in spec.variants:
        checkpoint = spec.checkpoint_root / spec.name / variant / "checkpoint_last.pt"
        if not checkpoint.is_file():
            sections += [f"## {variant}", "", "not trained yet", ""]
            continue
        print(f"[{variant}] interpretability battery", flush=True)
        out = spec.out_dir / variant / "interpret"
        interpret_battery(checkpoint, spec.data_bin, spec.spm_model, text, out,
                          max_sentences=args.interpret_sentences)
        body = (out / "interpret.md").read_text(encoding="utf-8")
        sections += [f"## {variant}", "", body.split("\n", 1)[1] if body.startswith("# ") else body, ""]
    report = spec.out_dir / "interpret.md"
    atomic_write_text(report, "\n".join(sections))
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mt_pipeline.runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", choices=sorted([*PRESETS, "interpret-multi30k"]))
    parser.add_argument("--interpret-sentences", type=int, default=60)
    parser.add_argument("--max-len-b", type=int, help="cap translations at N tokens (smoke runs of barely trained models)")
    parser.add_argument("--variants", nargs="+", choices=ALL_VARIANTS)
    parser.add_argument("--max-update", type=int, help="training updates per variant (preset default otherwise)")
    parser.add_argument("--out", help="results folder (default results/<preset>)")
    parser.add_argument("--data-bin", help="binarized data folder (default data-bin/<preset>)")
    parser.add_argument("--gold-dir", default=os.environ.get("GOLD_DIR", str(SHARED / "word-alignment-gold")))
    parser.add_argument("--multi30k-dir", default=os.environ.get("MULTI30K_DIR", str(SHARED / "multi30k")))
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "mt_pipeline.runs", *(argv if argv is not None else sys.argv[1:])])
    try:
        if args.preset == "interpret-multi30k":
            print(interpret_multi30k(args).read_text())
            return 0
        spec = PRESETS[args.preset](args)
        if args.max_len_b is not None:
            spec.generate_args = ["--max-len-a", "0", "--max-len-b", str(args.max_len_b)]
        rows = run_experiment(spec, command, log=lambda message: print(message, flush=True))
    except Exception as exc:  # noqa: BLE001 - one clear line for the user, the log has the details
        from .errors import PipelineError

        if isinstance(exc, (PipelineError, RuntimeError, ValueError, OSError)):
            print(f"mt_pipeline.runs: error: {exc}", file=sys.stderr)
            return 2
        raise
    print((spec.out_dir / "summary.md").read_text())
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
