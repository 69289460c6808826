"""The ``alignment_eval`` version, recorded in every AER signature and report."""

__version__ = "0.1.0"
