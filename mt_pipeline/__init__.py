"""Data preparation for the WMT directions of the ReLA paper, and for any local corpus.

    python -m mt_pipeline data --pair en-de            # manifest -> download ... -> data-bin/en-de
    python -m mt_pipeline prepare --src ... --out ...  # local files -> data-bin/NAME

Python API: :func:`prepare_corpus`, :func:`run_data_pipeline`, :class:`PreparedData`.
Every user-facing failure is a :class:`PipelineError` with a message naming the file.
"""

from nmt_common.version import package_version

__version__ = package_version()

from .errors import PipelineError  # noqa: E402
from .clean import CleanConfig  # noqa: E402
from .prepare import PreparedData, prepare_corpus  # noqa: E402
from .wmt import run_data_pipeline  # noqa: E402

__all__ = ["PipelineError", "CleanConfig", "PreparedData", "prepare_corpus", "run_data_pipeline", "__version__"]
