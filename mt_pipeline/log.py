"""Progress messages of the pipeline, through the ``mt_pipeline`` logger.

Each command line sets it up once (:func:`nmt_common.logs.setup_logging`): ``[mt_pipeline] message``
on stderr, warnings as ``[mt_pipeline] warning: message``.
"""

import logging

logger = logging.getLogger("mt_pipeline")


def log(message: str) -> None:
    logger.info(message)


def warn(message: str) -> None:
    logger.warning(message)
