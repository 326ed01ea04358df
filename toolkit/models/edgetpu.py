"""The Edge TPU head path: compiled int8 heads, their artifacts and the delegate.

``edge_accel = tpu-std | tpu-max`` runs the head on a Coral Edge TPU. The head
is the same full-integer int8 flatbuffer as ``int8``
(:func:`toolkit.models.quantize.quantize_int8`), compiled for the TPU by Coral's
``edgetpu_compiler`` (x86-64 Linux only), which writes ``<name>_edgetpu.tflite``
beside a log. Where the compiler is not installed, precompiled files with the
same names are taken from an artifacts folder. On the edge, LiteRT loads them
with the ``libedgetpu.so.1`` delegate (``libedgetpu1-std`` or
``libedgetpu1-max``: which one is installed is the TPU mode).

Names: the head of ``split`` of a model at an input size is
``<model>-<size>-split<k>`` (``:`` and ``/`` in the model name become ``_``),
so ``vit-b16:igelu`` at 224, split 6 is ``vit-b16_igelu-224-split6_edgetpu.tflite``.

Whatever is missing — the compiler and the artifact, or the delegate — is
refused with one line naming it and how to get it. This path has never run on a
real TPU here (see ``docs/devices.md``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from toolkit.errors import ToolkitError, first_line

__all__ = [
    "COMPILER",
    "DELEGATE",
    "EdgeTpuRunner",
    "compile_head",
    "compiled_name",
    "compiler_command",
    "find_compiled",
    "head_source",
    "head_stem",
    "load_edgetpu_delegate",
]

#: Coral's compiler (``apt-get install edgetpu-compiler``, x86-64 Linux)
COMPILER = "edgetpu_compiler"
#: the Edge TPU delegate library LiteRT loads on the edge
DELEGATE = "libedgetpu.so.1"
_SUFFIX = "_edgetpu.tflite"
_INSTALL_COMPILER = ("install Coral's compiler on an x86-64 Linux host "
                     "(apt-get install edgetpu-compiler)")
_INSTALL_RUNTIME = "install the Coral runtime (apt-get install libedgetpu1-std or libedgetpu1-max)"


def head_stem(model: str, split: int, input_size: int | None) -> str:
    """The file-name stem of a head: ``<model>-<size>-split<k>``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(model)).name)
    return f"{safe}-{input_size or 'default'}-split{int(split)}"


def compiled_name(stem: str) -> str:
    """The compiler's output name for ``<stem>.tflite``: ``<stem>_edgetpu.tflite``."""
    return f"{stem}{_SUFFIX}"


def compiler_command(tflite: str | os.PathLike, out_dir: str | os.PathLike,
                     compiler: str = COMPILER) -> list[str]:
    """The ``edgetpu_compiler`` command line that compiles ``tflite`` into ``out_dir``.

    ``-s`` prints which operations map to the TPU (kept in the log), ``-o`` the
    output folder; the output is ``<out_dir>/<stem>_edgetpu.tflite``.
    """
    return [compiler, "-s", "-o", str(out_dir), str(tflite)]


def find_compiled(artifacts: str | os.PathLike | None, stem: str) -> Path | None:
    """The precompiled ``<stem>_edgetpu.tflite`` in ``artifacts``, or None."""
    if artifacts is None:
        return None
    path = Path(artifacts) / compiled_name(stem)
    return path if path.is_file() else None


def head_source(stem: str, artifacts: str | os.PathLike | None = None,
                compiler: str | None = None) -> Path | None:
    """Where the compiled head of ``stem`` will come from, checked before any work.

    Returns:
        The precompiled ``<stem>_edgetpu.tflite`` in ``artifacts``, or None where
        it is not there but the compiler is on PATH (it can be compiled).

    Raises:
        ToolkitError: neither is there (one line naming both and how to get them).
    """
    found = find_compiled(artifacts, stem)
    if found is not None or shutil.which(compiler or COMPILER) is not None:
        return found
    where = f"{Path(artifacts) / compiled_name(stem)}" if artifacts else \
        f"an artifacts folder ({compiled_name(stem)})"
    raise ToolkitError(f"no Edge TPU head {compiled_name(stem)}: {compiler or COMPILER} "
                       f"is not on PATH and {where} does not exist; {_INSTALL_COMPILER}, "
                       "or compile it elsewhere and put it there")


def compile_head(flatbuffer: bytes, stem: str, out_dir: str | os.PathLike, *,
                 artifacts: str | os.PathLike | None = None,
                 compiler: str | None = None, timeout_s: float = 600.0) -> Path:
    """An Edge-TPU-compiled head: from ``artifacts`` if there, else compiled now.

    Args:
        flatbuffer: the head's full-integer int8 TFLite flatbuffer.
        stem: the head's name (:func:`head_stem`).
        out_dir: where the int8 file and the compiled one are written.
        artifacts: folder of precompiled ``*_edgetpu.tflite`` files, looked up first.
        compiler: the compiler executable (default: ``edgetpu_compiler`` on PATH).
        timeout_s: time limit of one compilation.

    Returns:
        The path of ``<stem>_edgetpu.tflite``.

    Raises:
        ToolkitError: neither the artifact nor the compiler is there, or the
            compiler failed (its last output line is quoted).
    """
    found = head_source(stem, artifacts, compiler)
    if found is not None:
        return found
    exe = shutil.which(compiler or COMPILER) or (compiler or COMPILER)  # checked above
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = out / f"{stem}.tflite"
    source.write_bytes(flatbuffer)
    try:
        proc = subprocess.run(compiler_command(source, out, exe), capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"{exe} took longer than {timeout_s:.0f} s on {source}") from None
    target = out / compiled_name(stem)
    if proc.returncode != 0 or not target.is_file():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ToolkitError(f"{exe} failed on {source} (exit {proc.returncode}): {last[0]}")
    return target


def load_edgetpu_delegate(library: str = DELEGATE):
    """LiteRT's Edge TPU delegate.

    Raises:
        ToolkitError: the library cannot be loaded (no Coral runtime, or no TPU).
    """
    from ai_edge_litert.interpreter import load_delegate

    try:
        return load_delegate(library)
    except (ValueError, OSError, RuntimeError) as exc:
        raise ToolkitError(f"cannot load the Edge TPU delegate {library} ({first_line(exc)}); "
                           f"{_INSTALL_RUNTIME} and plug in the Coral TPU") from None


class EdgeTpuRunner:
    """Runs a compiled head on the Edge TPU (float in, float out, like the int8 runner).

    Args:
        path: the ``*_edgetpu.tflite`` file.
        library: the delegate library.
    """

    def __init__(self, path: str | os.PathLike, library: str = DELEGATE) -> None:
        from toolkit.models.quantize import Int8Runner

        path = Path(path)
        if not path.is_file():
            raise ToolkitError(f"Edge TPU head {path} does not exist; deploy the compiled "
                               "heads with the other artifacts")
        self._runner = Int8Runner(path.read_bytes(), delegates=[load_edgetpu_delegate(library)])
        self.input_shape = self._runner.input_shape

    def __call__(self, x):
        """Run one sample (batch of 1) and return the float32 output."""
        return self._runner(x)
