"""Moved to :mod:`alignment_eval.analysis.report` and :mod:`alignment_eval.analysis.figures`; kept for one release."""

from .analysis.report import *  # noqa: F401,F403
from .analysis.figures import *  # noqa: F401,F403
from .analysis.figures import MAX_LABELLED_MODELS, MAX_LEGEND_MODELS, STAT_PANELS  # noqa: F401
from .analysis.report import (  # noqa: F401
    AER_FILE,
    BASELINE_DIRECTION_ORDER,
    BASELINE_FILE,
    FIGURE_AER,
    FIGURE_HEADS,
    FIGURE_STATS,
    GDFA_NAMES,
    STATS_FILE,
    RunInputs,
    aer_per_layer,
    attention_summary,
    best_aer,
)
