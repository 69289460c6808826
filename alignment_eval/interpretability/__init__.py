"""Is (sparse) cross-attention an explanation of the translation? The tests of ``alignment-eval
interpret`` (:mod:`.cli`): :mod:`.experiments` runs them on a model (torch side, :mod:`.model`),
:mod:`.measures` holds the torch-free measures, :mod:`.report` the Markdown and figures.

Torch boundary: :func:`.cli.run_tests` imports torch and :mod:`.experiments` when a test runs, so
that registering the command stays torch-free.
"""
