"""Sparse attention for fairseq: ``--user-dir fairseq_plugins``.

Importing this package registers the ``sparse_transformer`` model and its
architectures ``<variant>_transformer_{wmt_en_de,iwslt_de_en,tiny}`` for the
variants softmax, sparsemax, entmax15, alpha_entmax, topk, rela and rela_i,
and installs the fixes of :mod:`fairseq_plugins.fairseq_compat`.
"""

from . import fairseq_compat
from .attention import SparseMultiheadAttention  # noqa: F401
from .normalizers import ATTENTION_VARIANTS, NORMALIZERS, normalize  # noqa: F401
from .recording import AttentionRecord, record_attention  # noqa: F401
from .sparse_transformer import ARCHITECTURES, SparseTransformerModel  # noqa: F401

fairseq_compat.install()

__version__ = fairseq_compat.PLUGIN_VERSION
