"""The torch-free layer under every package of the toolkit: variant names and small utilities.

It imports the standard library only (matplotlib lazily, inside the figure helper), so that
``fairseq_plugins``, ``alignment_eval``, ``benchmarks`` and ``mt_pipeline`` can all use it, and
the torch-free parts of the toolkit stay torch-free.

Modules: :mod:`~nmt_common.variants` (the seven attention variants), :mod:`~nmt_common.files`
(atomic writes, JSON, line reading), :mod:`~nmt_common.markdown` (tables),
:mod:`~nmt_common.figures` (matplotlib set-up, saving), :mod:`~nmt_common.logs` (command-line
logging), :mod:`~nmt_common.version` (installed versions).
"""
