"""Training corpora named by their mtdata dataset ID: URL and inner paths from mtdata's index.

mtdata (Gowda et al., ACL 2021 demo; github.com/thammegowda/mtdata) ships its catalogue of MT
corpora inside the package, so looking an ID up needs no network (``mtdata list -l deu-eng``
reads the same index). mtdata builds the index once per version (about half a minute) and caches
it in ``$MTDATA`` (default ``~/.mtdata``). The pipeline downloads with its own downloader
(:mod:`mt_pipeline.download`), fed by the catalogue's URL.

mtdata is imported on first use only: it is slow to import and calls ``logging.basicConfig`` on
import, which is undone here so that it does not change how other libraries' messages print.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import PipelineError
from .log import log


@dataclass(frozen=True)
class CatalogueEntry:
    """What the pipeline takes from one mtdata entry: the URL of the archive and what to read in it."""

    dataset_id: str
    url: str
    files: dict | None = None  # language -> inner path, one text file per language
    tmx: str | None = None  # or the inner path of one TMX file holding both languages


def _mtdata(module: str = ""):
    """``mtdata`` or ``mtdata.<module>``, imported with the root logger's set-up restored afterwards and its
    INFO messages (index building) kept quiet."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.WARNING)
    try:
        return importlib.import_module(f"mtdata.{module}" if module else "mtdata")
    except ImportError as error:
        raise PipelineError(f"mtdata, the catalogue of training corpora, is not installed ({error}); "
                            f"install this project's dependencies (pip install -e .)") from None
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@functools.cache
def index():
    """mtdata's index of datasets (``mtdata.index.INDEX``), built on first use and cached by mtdata."""
    cached = _mtdata().cached_index_file
    if not Path(cached).exists():
        log(f"building mtdata's index of corpora once, in {Path(cached).parent} (about half a minute)")
    return _mtdata("index").INDEX


def mtdata_version() -> str:
    return _mtdata().__version__


def lookup(dataset_id: str, langs: tuple[str, str]) -> CatalogueEntry:
    """The catalogue entry of ``dataset_id``, a corpus of the language pair ``langs`` (any order);
    a PipelineError naming the ID when it is malformed, unknown, of other languages, or in a
    format the pipeline does not read."""
    catalogue = index()
    entry_module, bcp47 = _mtdata("entry"), _mtdata("iso.bcp47").bcp47
    try:
        did = entry_module.DatasetId.parse(dataset_id)
    except Exception as error:  # mtdata raises bare Exception and AssertionError here
        raise PipelineError(f"{dataset_id!r} is not an mtdata dataset ID (GROUP-NAME-VERSION-LANG1-LANG2): "
                            f"{error}") from None
    if str(did) != dataset_id:
        raise PipelineError(f"write the mtdata dataset ID {dataset_id!r} as mtdata spells it: {did}")
    if did not in catalogue:
        raise PipelineError(f"{dataset_id} is not in the index of mtdata {mtdata_version()}; "
                            f"`mtdata list -id -l {did.lang_str}` lists the IDs it has")
    ours = {bcp47(lang): lang for lang in langs}
    if set(ours) != set(did.langs):
        raise PipelineError(f"{dataset_id} is a {did.lang_str} corpus, not {'-'.join(langs)}")
    order = [ours[tag] for tag in did.langs]
    entry = catalogue[did]
    paths = list(entry.in_paths or ())
    if isinstance(entry.url, str) and entry.is_archive:
        if entry.in_ext == "txt" and len(paths) == 2:
            return CatalogueEntry(dataset_id, entry.url, files=dict(zip(order, paths)))
        if entry.in_ext == "tmx" and len(paths) == 1:
            return CatalogueEntry(dataset_id, entry.url, tmx=paths[0])
    raise PipelineError(
        f"{dataset_id}: mtdata gives it as {entry.ext} (inner format {entry.in_ext}); the pipeline reads a tar "
        f"or zip archive holding one text file per language, or one TMX file"
    )


def read_tmx(path: Path, langs: tuple[str, str], name: str | None = None) -> Iterator[tuple[str, str]]:
    """Segment pairs of the TMX file ``path`` in the order of ``langs``, read by mtdata's TMX reader
    (``mtdata.tmx.read_tmx``: units missing either language are skipped); errors call the file
    ``name`` (default its path)."""
    pairs = _mtdata("tmx").read_tmx(path, langs=langs)
    try:
        yield from pairs
    except Exception as error:  # ElementTree's ParseError, or mtdata's bare Exception for an empty TMX
        raise PipelineError(f"{name or path}: not a readable TMX file with {langs[0]} and {langs[1]} "
                            f"({error})") from None
