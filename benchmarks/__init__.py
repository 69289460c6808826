"""Speed benchmarks of the attention variants (``python -m benchmarks run --mode quick|full``).

* :mod:`benchmarks.attention`: one attention module, every normalizer, forward /
  forward+backward / inference time and peak memory over batch x heads x length.
* :mod:`benchmarks.model`: fairseq training throughput and beam-search decoding speed
  of the same architecture with each attention variant, as ratios to softmax.

Results go to ``results/perf/``: ``{attention,model}_<mode>.json``, ``.png`` and
``summary_<mode>.md``.
"""
