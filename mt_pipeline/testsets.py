"""Dev and test sets: from --from-dir when there, else through sacreBLEU's own datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nmt_common.files import atomic_path

from .clean import copy_text
from .errors import PipelineError
from .log import log


def find_local(from_dir: Path | None, names, pair: tuple[str, str]) -> Path | None:
    """First of ``names`` in FROM_DIR, FROM_DIR/SRC-TGT or FROM_DIR/TGT-SRC."""
    if from_dir is None:
        return None
    from_dir = Path(from_dir)
    folders = [from_dir, from_dir / f"{pair[0]}-{pair[1]}", from_dir / f"{pair[1]}-{pair[0]}"]
    for name in names:
        for folder in folders:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def _sacrebleu_echo(test_set: str, langpair: str, field: str, destination: Path, cache: Path) -> None:
    env = dict(os.environ, SACREBLEU=str(cache))
    command = [sys.executable, "-m", "sacrebleu", "-t", test_set, "-l", langpair, "--echo", field]
    with atomic_path(destination) as temporary, open(temporary, "wb") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.PIPE, env=env)
        if result.returncode != 0:
            tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
            raise PipelineError(
                f"sacrebleu could not provide {test_set} {langpair} ({field}): " + " | ".join(tail)
            )


def fetch_test_set(spec, pair: tuple[str, str], destinations: dict, *, from_dir: Path | None, offline: bool,
                   cache: Path) -> str:
    """Write the raw source and reference of ``spec`` (a manifest TestSet) to ``destinations``
    (language -> path); returns where they came from."""
    src, tgt = pair
    local = {lang: find_local(from_dir, [spec.local[lang]], pair) for lang in pair}
    if all(local.values()):
        for lang in pair:
            copy_text(local[lang], destinations[lang])
        log(f"{spec.name}: local files {local[src]}, {local[tgt]}")
        return f"local:{local[src]},{local[tgt]}"
    if spec.sacrebleu_test_set is None:
        raise PipelineError(
            f"{spec.name}: not in sacreBLEU; put {spec.local[src]} and {spec.local[tgt]} in --from-dir"
        )
    if offline:
        raise PipelineError(
            f"{spec.name}: --offline, and {spec.local[src]} / {spec.local[tgt]} are not in --from-dir "
            f"{from_dir} (nor in its {src}-{tgt} or {tgt}-{src} subfolder)"
        )
    langpair = spec.sacrebleu_langpair or f"{src}-{tgt}"
    log(f"{spec.name}: sacrebleu -t {spec.sacrebleu_test_set} -l {langpair} (cache {cache})")
    _sacrebleu_echo(spec.sacrebleu_test_set, langpair, "src", destinations[src], cache)
    _sacrebleu_echo(spec.sacrebleu_test_set, langpair, "ref", destinations[tgt], cache)
    return f"sacrebleu:{spec.sacrebleu_test_set}:{langpair}"


__all__ = ["fetch_test_set", "find_local", "copy_text"]
