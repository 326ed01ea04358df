"""Keeping TensorFlow's start-up and converter chatter off the user's terminal.

TensorFlow's C++ core logs to file descriptor 2 before Python can configure it
(e.g. the oneDNN notice at import, which ``TF_CPP_MIN_LOG_LEVEL`` does not
silence in recent releases), and its converter logs through the ``tensorflow``
Python logger. :func:`quiet_tensorflow` silences both for a block;
:func:`import_tensorflow` imports TensorFlow inside such a block. Errors still
surface as Python exceptions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

__all__ = ["import_tensorflow", "quiet_tensorflow"]


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Silence the ``tensorflow`` logger and, where it is a real file, fd 2."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # e.g. a notebook's stream
        fd = None
    saved = None
    if fd is not None:
        sys.stderr.flush()
        saved = os.dup(fd)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, fd)
            os.close(saved)
        tf_logger.setLevel(level)


def import_tensorflow() -> None:
    """Import TensorFlow (and Keras) without its start-up notices, once."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_tensorflow():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
