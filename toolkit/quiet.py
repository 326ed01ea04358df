"""Keeping TensorFlow's start-up and converter chatter off the user's terminal.

TensorFlow's C++ core logs to file descriptor 2 before Python can configure it
(e.g. the oneDNN notice at import, which ``TF_CPP_MIN_LOG_LEVEL`` does not
silence in recent releases), and its converter logs through the ``tensorflow``
Python logger. :func:`quiet_tensorflow` silences both for a block;
:func:`import_tensorflow` imports TensorFlow inside such a block. Errors still
surface as Python exceptions.

Most toolkit modules simply ``import keras``, so the first TensorFlow import
of a process can come from anywhere. :func:`silence_tensorflow_import`, which
``import toolkit`` calls, therefore puts an import hook in front of
``sys.meta_path``: whichever import loads the ``tensorflow`` package first, its
loading runs inside :func:`quiet_tensorflow`. The hook acts once and removes
itself; a process that loaded TensorFlow before the toolkit is left as it is.
On hosts whose CPU has AVX-512 or AMX, TensorFlow 2.21 prints its oneDNN
notice at import whatever ``TF_CPP_MIN_LOG_LEVEL`` says.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

__all__ = ["import_tensorflow", "quiet_tensorflow", "silence_tensorflow_import"]


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


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` inside :func:`quiet_tensorflow`."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader  # the module keeps its own loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with quiet_tensorflow():
            self.loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the path finder would, with a :class:`_QuietLoader`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: TensorFlow's own imports run unhooked
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def silence_tensorflow_import() -> None:
    """Make the process's first TensorFlow import quiet, wherever it comes from."""
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
