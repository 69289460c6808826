"""C++ row kernels on CPU (``csrc/sparse_rows.cpp``): sparsemax, 1.5-entmax, alpha-entmax (forward and
backward) and top-k, and ReLA's gated RMS norm (forward and backward).

Each kernel solves a row of scores in a few passes with no temporary tensors, where the PyTorch
formulation in :mod:`fairseq_plugins.normalizers` issues a dozen operators per pass; at decoding
sizes those operators' fixed cost is most of the time. The kernels compute the same thresholds
(tested equal to the PyTorch path and the ``entmax`` package).

They are compiled with the installed torch on first use (``torch.utils.cpp_extension``; g++ and
ninja, about a minute, cached under ``TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``).
Set ``SPARSE_ATTENTION_CPU_KERNELS=0`` to use the PyTorch path; when the build fails, the PyTorch
path is used and one warning says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Optional

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "sparse_rows.cpp"
HEADER = SOURCE.with_name("sparse_rows_impl.h")  # included twice by SOURCE (baseline and AVX2)
ENV_SWITCH = "SPARSE_ATTENTION_CPU_KERNELS"
_module = None
_unavailable: Optional[str] = None  # why the kernels are not used, once known
_enabled = True  # switched by :func:`enabled` (tests and benchmarks compare both paths)


def _build():
    import hashlib
    import shutil
    import sys

    from torch.utils.cpp_extension import load

    venv_bin = str(Path(sys.executable).parent)
    if shutil.which("ninja") is None and shutil.which("ninja", path=venv_bin):
        # the ninja wheel lives in the virtualenv, which need not be on PATH (.venv/bin/python ...)
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")

    # torch rebuilds when SOURCE changes but does not look at the header it includes: the name
    # carries a digest of both, so an edited header gets its own build
    digest = hashlib.sha256(SOURCE.read_bytes() + HEADER.read_bytes()).hexdigest()[:12]
    # -fopenmp-simd, -fno-trapping-math, -fno-signed-zeros: let g++ vectorise the row reductions
    # (measured 4x on 1.5-entmax's pass) without -ffast-math's other licences (NaN and inf keep their
    # meaning: -inf is a masked key); no -march=native, so a cached build stays valid on another x86-64.
    return load(name=f"sparse_attention_rows_{digest}", sources=[str(SOURCE)],
                extra_cflags=["-O3", "-fopenmp-simd", "-fno-trapping-math", "-fno-signed-zeros"], verbose=False)


def kernels():
    """The compiled module, or None (disabled by ``SPARSE_ATTENTION_CPU_KERNELS=0``, or the build failed)."""
    global _module, _unavailable
    if _module is not None or _unavailable is not None:
        return _module
    if os.environ.get(ENV_SWITCH, "1") == "0":
        _unavailable = f"{ENV_SWITCH}=0"
        return None
    try:
        _module = _build()
    except Exception as error:  # no compiler, no ninja, headers missing: the PyTorch path still works
        _unavailable = f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
        logger.warning("sparse attention CPU kernels unavailable (%s); using the PyTorch path (slower)", _unavailable)
    return _module


def unavailable_reason() -> Optional[str]:
    """Why :func:`kernels` returns None (after a call), or None when the kernels are in use."""
    kernels()
    return _unavailable


def usable(rows: torch.Tensor):
    """The kernel module when ``rows`` (``[rows, keys]``) can go through it (CPU, float32/float64), else None."""
    if not _enabled or rows.device.type != "cpu" or rows.dtype not in (torch.float32, torch.float64):
        return None
    return kernels()


@contextlib.contextmanager
def enabled(flag: bool):
    """Within the block, the CPU normalizers use the kernels (``True``, when built) or PyTorch (``False``)."""
    global _enabled
    previous, _enabled = _enabled, flag
    try:
        yield
    finally:
        _enabled = previous


def status() -> str:
    """One line for reports: which implementation the CPU normalizers use."""
    reason = unavailable_reason()
    return f"C++ row kernels ({_module.instruction_set()})" if reason is None else f"PyTorch operators ({reason})"
