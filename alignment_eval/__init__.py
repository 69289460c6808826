"""Word-alignment evaluation of sparse-attention NMT: AER, symmetrisation, statistical baselines,
attention analysis and interpretability tests, behind one command, ``alignment-eval`` (:mod:`.cli`).

One subpackage per question (see README.md): :mod:`.alignments` (the torch-free library),
:mod:`.baselines`, :mod:`.analysis` and :mod:`.interpretability`. This package re-exports the
torch-free API of :mod:`.alignments`; importing it never imports torch or fairseq.
"""

from .alignments import *  # noqa: F401,F403  (the torch-free API)
from .alignments import __all__, __version__  # noqa: F401
