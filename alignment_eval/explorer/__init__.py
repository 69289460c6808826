"""The attention explorer: ``alignment-eval explore`` writes one self-contained HTML page to browse,
per checkpoint side by side, what every head of every sublayer attends to, with gold and induced links.

Modules: :mod:`.payload` (8-bit packing, NumPy), :mod:`.assets` (the page's CSS and JavaScript),
:mod:`.page` (HTML assembly), :mod:`.collect` (recording, through :mod:`alignment_eval.analysis`),
:mod:`.cli` (the command) and :mod:`.browser` (a headless-Chromium DevTools client for the tests and
the README screenshot). Only :mod:`.collect` reaches torch, through ``analysis.model_attention``
when it runs; importing this package loads neither torch nor fairseq. See README.md.
"""

from .page import render_page, write_page
from .payload import (
    SUBLAYERS, CheckpointInfo, ExplorerData, Segmentation, SentenceAttention, SentenceInfo, decode_sentence,
    dequantise, encode_sentence, quantise,
)

__all__ = [
    "SUBLAYERS", "CheckpointInfo", "ExplorerData", "Segmentation", "SentenceAttention", "SentenceInfo",
    "decode_sentence", "dequantise", "encode_sentence", "quantise", "render_page", "write_page",
]
