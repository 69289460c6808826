"""Cleaning of parallel training text, and normalisation of dev/test text.

Training pairs, in order: undecodable UTF-8 -> dropped; every line normalised
(:func:`mt_pipeline.text.normalize_line`); a pair with an empty side -> dropped; a side
shorter than ``min_len`` or longer than ``max_len`` tokens -> dropped; a pair whose
token counts differ by more than ``ratio`` times -> dropped; exact duplicate pairs ->
all but the first dropped.

Defaults follow Moses ``clean-corpus-n.perl`` (lengths 1..250 as in fairseq's WMT
scripts, ratio 9, Moses' own default). The filter runs on untokenised text, before
subword segmentation, for languages whose word counts differ a lot (Finnish is
agglutinative; Chinese has no spaces and is counted in characters); fairseq's ratio 1.5
was calibrated on joint-BPE token counts of En-De and would throw away many correct
Fi-En and Zh-En pairs here. 9 only removes gross misalignments.

Dev and test sets are normalised but never filtered (their lines must stay aligned with
the references).
"""

from __future__ import annotations

import array
import collections
import hashlib
import itertools
import multiprocessing
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from nmt_common.files import atomic_path, partial_path

from .errors import PipelineError
from .files import check_parallel, count_lines, iter_lines
from .log import log
from .text import count_tokens, normalize_line

CHUNK_PAIRS = 10_000


@dataclass(frozen=True)
class CleanConfig:
    min_len: int = 1
    max_len: int = 250
    ratio: float = 9.0
    dedup: bool = True
    normalize_punct: bool = True

    def __post_init__(self):
        if self.min_len < 0 or self.max_len < max(1, self.min_len):
            raise PipelineError(f"bad length filter: min {self.min_len}, max {self.max_len} tokens")
        if self.ratio < 1:
            raise PipelineError(f"bad ratio filter {self.ratio}: it must be at least 1")

    def as_dict(self) -> dict:
        return asdict(self)


class TrainPart(NamedTuple):
    name: str
    source: Path
    target: Path
    copies: int = 1  # upsampling: each kept pair is written this many times (copies are not duplicates)


def _pairs(part: TrainPart, limit: int | None) -> Iterator[tuple[str | None, str | None]]:
    """Lines of both files in lockstep; PipelineError naming both files when one ends first."""
    sentinel = object()
    sources = iter_lines(part.source, strict=False)
    targets = iter_lines(part.target, strict=False)
    for number, (source, target) in enumerate(itertools.zip_longest(sources, targets, fillvalue=sentinel), 1):
        if source is sentinel or target is sentinel:
            raise PipelineError(
                f"corpus {part.name}: line counts differ: {part.source} has {count_lines(part.source)} lines, "
                f"{part.target} has {count_lines(part.target)} lines"
            )
        if limit is not None and number > limit:
            return
        yield source, target


def _clean_chunk(job) -> tuple[list[tuple[str, str]], Counter]:
    pairs, source_lang, target_lang, config = job
    kept = []
    stats = Counter()
    for source, target in pairs:
        if source is None or target is None:
            stats["invalid_utf8"] += 1
            continue
        source = normalize_line(source, source_lang, punct=config.normalize_punct)
        target = normalize_line(target, target_lang, punct=config.normalize_punct)
        if not source or not target:
            stats["empty"] += 1
            continue
        n_source, n_target = count_tokens(source, source_lang), count_tokens(target, target_lang)
        if not (config.min_len <= n_source <= config.max_len and config.min_len <= n_target <= config.max_len):
            stats["length"] += 1
            continue
        if n_source > config.ratio * n_target or n_target > config.ratio * n_source:
            stats["ratio"] += 1
            continue
        kept.append((source, target))
    return kept, stats


def _chunks(parts: Sequence[TrainPart], limit: int | None, source_lang, target_lang, config, bar, read, copies):
    for part in parts:
        if part.copies < 1:
            raise PipelineError(f"corpus {part.name}: copies must be at least 1, not {part.copies}")
        pairs = _pairs(part, limit)
        while chunk := list(itertools.islice(pairs, CHUNK_PAIRS)):
            copies.append(part.copies)  # consumed in the same order as the chunks' results
            read[part.name] += len(chunk)
            bar.update(len(chunk))
            yield chunk, source_lang, target_lang, config


def _map(function, jobs: Iterable, workers: int) -> Iterator:
    """``map`` in order over ``workers`` processes, with at most 2 x workers chunks in flight."""
    if workers <= 1:
        yield from map(function, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending = collections.deque()
        for job in jobs:
            pending.append(pool.apply_async(function, (job,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def pair_hash(source: str, target: str) -> int:
    digest = hashlib.blake2b(f"{source}\t{target}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def clean_train(
    parts: Sequence[TrainPart],
    out_source: Path,
    out_target: Path,
    *,
    source_lang: str,
    target_lang: str,
    config: CleanConfig,
    max_lines: int | None = None,
    workers: int = 1,
) -> dict:
    """Clean and concatenate the training corpora ``parts`` into two parallel files.

    ``max_lines`` keeps only the first lines of each corpus (quick runs). Returns counts:
    pairs read per corpus, dropped per reason, kept.
    """
    from tqdm import tqdm

    total = 0
    for part in parts:
        n = check_parallel(part.source, part.target, f"corpus {part.name}")
        total += n if max_lines is None else min(n, max_lines)
    stats = Counter()
    read = Counter()
    hashes = array.array("q")
    pre_source = partial_path(Path(out_source)).with_suffix(".filtered")
    pre_target = partial_path(Path(out_target)).with_suffix(".filtered")
    for path in (pre_source, pre_target):
        path.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=total, unit=" pairs", unit_scale=True, desc="clean", disable=None, leave=False)
    try:
        with open(pre_source, "w", encoding="utf-8", newline="\n") as fs, \
                open(pre_target, "w", encoding="utf-8", newline="\n") as ft:
            copies = collections.deque()
            jobs = _chunks(parts, max_lines, source_lang, target_lang, config, bar, read, copies)
            for kept, chunk_stats in _map(_clean_chunk, jobs, workers):
                stats.update(chunk_stats)
                repeat = copies.popleft()
                for source, target in kept:
                    for copy in range(repeat):
                        fs.write(source + "\n")
                        ft.write(target + "\n")
                        # copy k > 0 hashes apart, so that dedup keeps the upsampled copies
                        hashes.append(pair_hash(source, target if copy == 0 else f"{target}\0{copy}"))
        bar.close()
        n_read = sum(read.values())
        if config.dedup and len(hashes):
            import numpy as np

            values = np.frombuffer(hashes, dtype=np.int64)
            _, first = np.unique(values, return_index=True)
            keep = np.zeros(len(values), dtype=bool)
            keep[first] = True
            stats["duplicate"] = int(len(values) - keep.sum())
        else:
            keep = None
        kept_count = len(hashes) - stats["duplicate"]
        if kept_count == 0:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.items())) or "none"
            names = ", ".join(f"{p.source} / {p.target}" for p in parts)
            raise PipelineError(
                f"no training pairs left after cleaning {names}: {n_read} pairs read, dropped ({reasons})"
            )
        with atomic_path(Path(out_source)) as final_source, atomic_path(Path(out_target)) as final_target:
            if keep is None:
                pre_source.replace(final_source)
                pre_target.replace(final_target)
            else:
                with open(pre_source, encoding="utf-8", newline="\n") as ins, \
                        open(pre_target, encoding="utf-8", newline="\n") as int_, \
                        open(final_source, "w", encoding="utf-8", newline="\n") as outs, \
                        open(final_target, "w", encoding="utf-8", newline="\n") as outt:
                    for flag, source, target in zip(keep, ins, int_):
                        if flag:
                            outs.write(source)
                            outt.write(target)
    finally:
        bar.close()
        pre_source.unlink(missing_ok=True)
        pre_target.unlink(missing_ok=True)
    dropped = {k: int(v) for k, v in sorted(stats.items())}
    log(
        f"clean: {n_read} pairs read, {kept_count} kept, dropped "
        + (", ".join(f"{k} {v}" for k, v in dropped.items()) or "none")
    )
    return {"read": dict(read), "read_total": n_read, "kept": kept_count, "dropped": dropped}


def normalize_parallel(
    source: Path,
    target: Path,
    out_source: Path,
    out_target: Path,
    *,
    source_lang: str,
    target_lang: str,
    punct: bool,
    what: str,
) -> int:
    """Normalise a dev/test set line by line (no line is dropped); returns its line count."""
    n = check_parallel(source, target, what)
    for path, out, lang in ((source, out_source, source_lang), (target, out_target, target_lang)):
        with atomic_path(Path(out)) as temporary, open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            for line in iter_lines(path, strict=True):
                handle.write(normalize_line(line, lang, punct=punct) + "\n")
    return n


def copy_text(source: Path, destination: Path) -> int:
    """Copy a text file as UTF-8 lines with "\\n" endings (decompressing .gz); returns lines."""
    n = 0
    with atomic_path(Path(destination)) as temporary, open(temporary, "w", encoding="utf-8", newline="\n") as handle:
        for line in iter_lines(source, strict=True):
            handle.write(line + "\n")
            n += 1
    return n
