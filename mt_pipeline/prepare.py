"""The steps shared by every corpus: clean -> SentencePiece -> encode -> fairseq-preprocess.

``prepare_corpus`` runs them on local files; ``mt_pipeline.wmt.run_data_pipeline`` runs
them after its download and extract steps. Each step is restartable (see
:mod:`mt_pipeline.steps`); the binarized folder is replaced atomically at the end and
holds everything needed to translate and score:

    DATA_BIN/dict.SRC.txt, dict.TGT.txt, {train,valid,test}.SRC-TGT.{SRC,TGT}.{bin,idx}
    DATA_BIN/spm.model, spm.vocab        (joint; separate: spm.SRC.model, spm.TGT.model)
    DATA_BIN/test.raw.SRC, test.raw.TGT  (the test set as given: no normalisation; the
                                          reference is what BLEU is computed against)
    DATA_BIN/prepare.json                (settings, counts, sacreBLEU test-set name)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from nmt_common.files import partial_path, write_json
from nmt_common.version import package_version

from .binarize import fairseq_preprocess
from .clean import CleanConfig, TrainPart, clean_train, copy_text, normalize_parallel
from .errors import PipelineError
from .files import check_parallel, require_file, sha256_file
from .log import log
from .steps import completed_fingerprint, fingerprint, run_step
from .subword import SpmConfig, encode_file, encode_lines, load, model_names, train_model
from .text import normalize_line

STEPS = ("download", "extract", "clean", "spm", "encode", "binarize")
LOCAL_STEPS = ("clean", "spm", "encode", "binarize")
INFO_FILE = "prepare.json"
_LANG = re.compile(r"^[A-Za-z]{2,3}([_][A-Za-z0-9]+)*$")


@dataclass(frozen=True)
class PreparedData:
    """Where the outputs of a prepared corpus are.

    ``spm_model`` is the joint model, or the source-language model when the vocabularies
    are separate (``spm_models`` has one per language either way). ``test_source`` and
    ``test_reference`` are the raw test files (not normalised), None without a test set.
    """

    data_bin: Path
    src_lang: str
    tgt_lang: str
    spm_model: Path
    spm_models: dict = field(default_factory=dict)
    test_source: Path | None = None
    test_reference: Path | None = None
    info_file: Path | None = None
    sacrebleu_test_set: str | None = None
    sacrebleu_langpair: str | None = None
    normalize_punct: bool = True

    @classmethod
    def load(cls, data_bin: Path) -> "PreparedData":
        """Read ``DATA_BIN/prepare.json`` written by the binarize step."""
        data_bin = Path(data_bin)
        info_file = data_bin / INFO_FILE
        if not info_file.is_file():
            raise PipelineError(f"{data_bin} was not prepared by mt_pipeline (no {INFO_FILE})")
        info = json.loads(info_file.read_text(encoding="utf-8"))
        src, tgt = info["src"], info["tgt"]
        models = {lang: data_bin / name for lang, name in info["spm"]["models"].items()}
        test = info.get("test") or {}
        sacrebleu = test.get("sacrebleu") or {}
        return cls(
            data_bin=data_bin,
            src_lang=src,
            tgt_lang=tgt,
            spm_model=models[src],
            spm_models=models,
            test_source=data_bin / test["source"] if test.get("source") else None,
            test_reference=data_bin / test["reference"] if test.get("reference") else None,
            info_file=info_file,
            sacrebleu_test_set=sacrebleu.get("test_set"),
            sacrebleu_langpair=sacrebleu.get("langpair"),
            normalize_punct=info["normalize"]["punct"],
        )

    def preprocess(self, lines: Iterable[str], lang: str | None = None) -> list[str]:
        """Raw text -> the pieces the model was trained on (same normalisation and model)."""
        lang = lang or self.src_lang
        processor = load(self.spm_models[lang])
        return encode_lines(processor, [normalize_line(l, lang, punct=self.normalize_punct) for l in lines])


def check_language(code: str, what: str) -> str:
    if not code or not _LANG.match(code):
        raise PipelineError(f"bad {what} language code {code!r} (expected e.g. 'de', 'en', 'zh')")
    return code


def parse_steps(steps: str | Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    """``'clean,spm'`` or a list -> the steps in pipeline order; a PipelineError for unknown names."""
    if steps is None:
        return list(allowed)
    names = [s.strip() for s in (steps.split(",") if isinstance(steps, str) else steps) if s.strip()]
    unknown = [s for s in names if s not in allowed]
    if unknown or not names:
        raise PipelineError(f"unknown step(s) {', '.join(unknown) or '(none given)'}; steps: {', '.join(allowed)}")
    return [s for s in allowed if s in names]


def ensure_root(root: Path) -> Path:
    """Create the work root; a new one gets a .gitignore of '*' so nothing in it is committed."""
    root = Path(root)
    if not root.exists():
        root.mkdir(parents=True)
        (root / ".gitignore").write_text("# mt_pipeline work folder: downloads and intermediate files\n*\n")
    return root


@dataclass
class Job:
    """One corpus to take through the shared steps."""

    work: Path
    out: Path
    src: str
    tgt: str
    train: list
    valid: tuple
    test: tuple | None
    inputs: dict
    clean: CleanConfig
    spm: SpmConfig
    max_train_lines: int | None = None
    workers: int = 1
    meta: dict = field(default_factory=dict)

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)


def _splits(job: Job) -> list[str]:
    return ["train", "valid"] + (["test"] if job.test is not None else [])


def _check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / INFO_FILE).is_file())):
        raise PipelineError(f"refusing to replace {out}: it exists and was not written by mt_pipeline")


def _replace_dir(temporary: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(temporary, out)
    shutil.rmtree(old, ignore_errors=True)


def run_shared_steps(job: Job, steps: Sequence[str]) -> PreparedData | None:
    """Run the requested shared steps (the others must be complete already)."""
    src, tgt = job.src, job.tgt
    langs = (src, tgt)
    last = [s for s in LOCAL_STEPS if s in steps][-1] if any(s in steps for s in LOCAL_STEPS) else None
    if last is None:
        return None
    job.spm = job.spm.with_languages(langs)
    job.work.mkdir(parents=True, exist_ok=True)

    # --- clean -----------------------------------------------------------------------
    clean_files = {(split, lang): job.path("clean", f"{split}.{lang}") for split in _splits(job) for lang in langs}

    def do_clean():
        info = clean_train(
            [TrainPart(*p) for p in job.train], clean_files["train", src], clean_files["train", tgt],
            source_lang=src, target_lang=tgt, config=job.clean, max_lines=job.max_train_lines, workers=job.workers,
        )
        for split, files in (("valid", job.valid), ("test", job.test)):
            if files is None:
                continue
            info[split] = normalize_parallel(
                files[0], files[1], clean_files[split, src], clean_files[split, tgt],
                source_lang=src, target_lang=tgt, punct=job.clean.normalize_punct, what=f"{split} set",
            )
        return info

    marker = job.path("clean.done.json")
    if "clean" in steps:
        clean_fp, clean_info = run_step(
            "clean", marker,
            params={"config": job.clean.as_dict(), "max_train_lines": job.max_train_lines, "src": src, "tgt": tgt},
            inputs=job.inputs, outputs=list(clean_files.values()), action=do_clean,
        )
    else:
        clean_fp = completed_fingerprint(marker, "clean")
        clean_info = json.loads(marker.read_text())["info"]
    if last == "clean":
        return None

    # --- SentencePiece ---------------------------------------------------------------
    names = model_names(src, tgt, job.spm.joint)
    models = {lang: job.path("spm", names[lang]) for lang in langs}

    def do_spm():
        if job.spm.joint:
            return {"joint": train_model([clean_files["train", src], clean_files["train", tgt]], models[src],
                                         langs=langs, config=job.spm, threads=job.workers)}
        return {lang: train_model([clean_files["train", lang]], models[lang], langs=[lang], config=job.spm,
                                  threads=job.workers) for lang in langs}

    marker = job.path("spm.done.json")
    spm_outputs = sorted({*models.values(), *(m.with_suffix(".vocab") for m in models.values())})
    if "spm" in steps:
        spm_fp, _ = run_step("spm", marker, params=job.spm.as_dict(), inputs={"clean": clean_fp},
                                    outputs=spm_outputs, action=do_spm)
    else:
        spm_fp = completed_fingerprint(marker, "spm")
    if last == "spm":
        return None

    # --- encode ----------------------------------------------------------------------
    encoded = {(split, lang): job.path("encoded", f"{split}.{lang}") for split in _splits(job) for lang in langs}

    def do_encode():
        counts = {}
        for (split, lang), destination in encoded.items():
            counts[f"{split}.{lang}"] = encode_file(models[lang], clean_files[split, lang], destination,
                                                    threads=job.workers, desc=f"encode {split}.{lang}")
        return counts

    marker = job.path("encode.done.json")
    if "encode" in steps:
        encode_fp, _ = run_step("encode", marker, params={}, inputs={"clean": clean_fp, "spm": spm_fp},
                                outputs=list(encoded.values()), action=do_encode)
    else:
        encode_fp = completed_fingerprint(marker, "encode")

    # --- binarize --------------------------------------------------------------------
    if last == "encode":
        return None
    out = Path(job.out)
    test_raw = {lang: f"test.raw.{lang}" for lang in langs} if job.test is not None else {}

    def do_binarize():
        _check_out_dir(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = partial_path(out)
        shutil.rmtree(temporary, ignore_errors=True)
        try:
            fairseq_preprocess(
                source_lang=src, target_lang=tgt,
                trainpref=job.path("encoded", "train"), validpref=job.path("encoded", "valid"),
                testpref=job.path("encoded", "test") if job.test is not None else None,
                destdir=temporary, joined_dictionary=job.spm.joint, workers=job.workers,
                log_file=job.path("binarize.log"),
            )
            for model in spm_outputs:
                shutil.copyfile(model, temporary / model.name)
            if job.test is not None:
                for lang, raw in zip(langs, job.test):
                    copy_text(raw, temporary / test_raw[lang])
            counts = {"train": clean_info.get("kept"), "valid": clean_info.get("valid"),
                      "test": clean_info.get("test")}
            info = {
                "format": "mt_pipeline/1",
                "created_by": f"mt_pipeline {package_version()}",
                "src": src,
                "tgt": tgt,
                "joined_dictionary": job.spm.joint,
                "spm": {"models": names, "config": job.spm.as_dict()},
                "normalize": {"punct": job.clean.normalize_punct,
                              "rules": "mt_pipeline.text.normalize_line (whitespace, Romanian cedillas, "
                                       "Moses punctuation unless zh/ja)"},
                "clean": job.clean.as_dict() | {"max_train_lines": job.max_train_lines},
                "counts": counts,
                "cleaning": {"read": clean_info.get("read_total"), "dropped": clean_info.get("dropped")},
                "test": {"source": test_raw.get(src), "reference": test_raw.get(tgt),
                         "sacrebleu": job.meta.get("test_sacrebleu")} if job.test is not None else None,
                "valid": {"sacrebleu": job.meta.get("valid_sacrebleu")},
                "meta": {k: v for k, v in job.meta.items() if k not in {"test_sacrebleu", "valid_sacrebleu"}},
                "fingerprint": encode_fp,
            }
            write_json(temporary / INFO_FILE, info)
            _replace_dir(temporary, out)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        log(f"binarize: {out} ready ({counts['train']} training pairs)")
        return {"out": str(out)}

    run_step("binarize", job.path("binarize.done.json"), params={"out": str(out.resolve()), "meta": job.meta},
             inputs={"encode": encode_fp}, outputs=lambda: sorted(p for p in out.iterdir() if p.is_file()),
             action=do_binarize)
    return PreparedData.load(out)


def file_fingerprint(path: Path) -> dict:
    path = require_file(path)
    return {"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path, desc=path.name)}


def prepare_corpus(
    src: Path,
    tgt: Path,
    *,
    src_lang: str,
    tgt_lang: str,
    valid_src: Path,
    valid_tgt: Path,
    out: Path,
    test_src: Path | None = None,
    test_tgt: Path | None = None,
    spm_vocab: int = 8000,
    joint: bool = True,
    character_coverage: dict | None = None,
    spm_model_type: str = "bpe",
    spm_sample: int = 5_000_000,
    clean: CleanConfig | None = None,
    root: Path = Path("data/work"),
    work: Path | None = None,
    max_train_lines: int | None = None,
    workers: int = 1,
    steps: Sequence[str] | str | None = None,
    sacrebleu_test_set: str | None = None,
    sacrebleu_langpair: str | None = None,
    name: str | None = None,
    extra_train: Sequence[TrainPart] = (),
) -> PreparedData | None:
    """Local parallel files -> ``out`` (a fairseq data-bin folder with the SentencePiece model).

    ``extra_train`` adds training corpora after the main one, each ``copies`` times
    (upsampling; SentencePiece is trained on the result). Files may be gzipped. The test set is optional; when given, both sides are needed (the
    raw target side is the BLEU reference). Returns None when ``steps`` stops before
    ``binarize``.
    """
    src_lang = check_language(src_lang, "source")
    tgt_lang = check_language(tgt_lang, "target")
    if src_lang == tgt_lang:
        raise PipelineError(f"source and target language are both {src_lang!r}")
    if (test_src is None) != (test_tgt is None):
        raise PipelineError("give both --test-src and --test-tgt (the target side is the BLEU reference), or neither")
    if max_train_lines is not None and max_train_lines < 1:
        raise PipelineError(f"--max-train-lines must be positive, not {max_train_lines}")
    steps = parse_steps(steps, LOCAL_STEPS)
    train = (Path(src), Path(tgt))
    valid = (Path(valid_src), Path(valid_tgt))
    test = (Path(test_src), Path(test_tgt)) if test_src is not None else None
    extra_train = [TrainPart(*part) for part in extra_train]
    for what, pair in (("training corpus", train), ("valid set", valid), ("test set", test),
                       *((f"training corpus {p.name}", (p.source, p.target)) for p in extra_train)):
        if pair is not None:
            check_parallel(pair[0], pair[1], what)
    out = Path(out)
    if "binarize" in steps:
        _check_out_dir(out)
    work = Path(work) if work is not None else ensure_root(Path(root)) / f"prepare-{out.name}"
    inputs = {
        "train": [file_fingerprint(p) for p in train],
        "valid": [file_fingerprint(p) for p in valid],
        "test": [file_fingerprint(p) for p in test] if test else None,
    }
    if extra_train:  # absent otherwise, so that existing fingerprints stay valid
        inputs["extra_train"] = [{"name": p.name, "copies": p.copies, "files": [file_fingerprint(p.source),
                                  file_fingerprint(p.target)]} for p in extra_train]
    job = Job(
        work=work, out=out, src=src_lang, tgt=tgt_lang,
        train=[(name or "train", train[0], train[1]), *extra_train], valid=valid, test=test,
        inputs={"files": fingerprint(inputs)},
        clean=clean or CleanConfig(),
        spm=SpmConfig(vocab_size=spm_vocab, joint=joint, model_type=spm_model_type,
                      character_coverage=dict(character_coverage or {}), input_sentence_size=spm_sample),
        max_train_lines=max_train_lines, workers=workers,
        meta={
            "name": name or out.name,
            "inputs": {k: [str(p.resolve()) for p in v] if v else None for k, v in
                       (("train", train), ("valid", valid), ("test", test))},
            "test_sacrebleu": {"test_set": sacrebleu_test_set, "langpair": sacrebleu_langpair or f"{src_lang}-{tgt_lang}"}
            if sacrebleu_test_set else None,
        },
    )
    log(f"prepare: {src_lang}-{tgt_lang} -> {out} (work folder {work}; steps {', '.join(steps)})")
    return run_shared_steps(job, steps)


def add_test_set(prepared: PreparedData, subset: str, source: Path, reference: Path, *,
                 workers: int = 1) -> Path:
    """Binarize another test set into ``prepared.data_bin`` as ``subset`` (``test1``, ...); returns its raw reference.

    Same normalisation, SentencePiece model(s) and dictionaries as the training data;
    the raw reference is kept as ``SUBSET.raw.TGT`` for BLEU. Skipped when done for these files.
    """
    import subprocess
    import sys
    import tempfile

    if not re.fullmatch(r"test\d+", subset):
        raise PipelineError(f"extra test subsets are named test1, test2, ...; not {subset!r}")
    check_parallel(Path(source), Path(reference), f"test set {subset}")
    src, tgt = prepared.src_lang, prepared.tgt_lang
    data_bin = prepared.data_bin
    prefix = f"{subset}.{src}-{tgt}"
    outputs = [data_bin / f"{prefix}.{lang}.{ext}" for lang in (src, tgt) for ext in ("bin", "idx")]
    raw_reference = data_bin / f"{subset}.raw.{tgt}"

    def do_add():
        with tempfile.TemporaryDirectory(dir=data_bin.parent) as temporary:
            temporary = Path(temporary)
            for lang, path in ((src, source), (tgt, reference)):
                lines = [normalize_line(line, lang, punct=prepared.normalize_punct)
                         for line in Path(path).read_text(encoding="utf-8").splitlines()]
                pieces = encode_lines(load(prepared.spm_models[lang]), lines)
                (temporary / f"text.{lang}").write_text("".join(p + "\n" for p in pieces), encoding="utf-8")
            command = [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", src, "--target-lang", tgt,
                       "--testpref", str(temporary / "text"), "--destdir", str(temporary / "bin"),
                       "--srcdict", str(data_bin / f"dict.{src}.txt"), "--tgtdict", str(data_bin / f"dict.{tgt}.txt"),
                       "--workers", str(max(1, workers))]
            result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if result.returncode != 0:
                raise PipelineError(f"fairseq-preprocess failed on {source}:\n{result.stderr[-2000:]}")
            for output in outputs:
                os.replace(temporary / "bin" / output.name.replace(subset, "test", 1), output)
            copy_text(Path(reference), raw_reference)

    run_step(f"add {subset}", data_bin / f"{subset}.done.json", params={"subset": subset},
             inputs={"data": prepared.info_file.read_text(encoding="utf-8"), "source": file_fingerprint(Path(source)),
                     "reference": file_fingerprint(Path(reference))},
             outputs=[*outputs, raw_reference], action=do_add)
    return raw_reference
