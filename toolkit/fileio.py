"""Checked CSV input and atomic file output.

:func:`read_table` turns every way a file can fail to be the expected table
(missing, binary, empty, malformed, missing columns) into one
:class:`~toolkit.errors.ToolkitError` that names the file, the expected kind and
the missing columns. :func:`atomic_output` and :func:`write_table` write through
a temporary file renamed over the target, so a failed or interrupted write never
leaves a half-written file and never destroys an existing one; :func:`save_figure`
does the same for a matplotlib figure. :func:`check_writable` tells, before any
long work, whether an output can be written at all, so that a mistyped output
path costs nothing already measured.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError, choices, first_line, short_repr

if TYPE_CHECKING:  # pandas loads only where a table is read
    import pandas as pd

__all__ = ["as_path", "atomic_output", "check_table", "check_writable", "figure_format",
           "integer_column", "not_a_file", "numeric_column", "plain_value", "read_json",
           "read_table", "save_figure", "utc_timestamp", "write_table"]


def as_path(path: Any, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` where it is a ``str`` or path-like.

    Args:
        path: what a reader or writer was given as its file.
        what: what the file is, for the message (e.g. ``"a front file"``).

    Raises:
        ToolkitError: an empty path, or anything else (``None``, a number, an
            open file...), one line naming ``what`` and what was given.
    """
    if isinstance(path, str) and not path:   # Path("") is the current folder: never meant
        raise ToolkitError(f"{what} was given as an empty path")
    if isinstance(path, str | os.PathLike):
        return Path(path)
    raise ToolkitError(f"{what} should be given as a str or pathlib.Path, got "
                       f"{type(path).__name__}")


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (``"does not exist"``, ``"is a
    directory, not a file"``...), or None where it is a regular file."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a directory, not a file"
    return "is not a regular file" if path.exists() else "does not exist"


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The temporary file is flushed to disk and given the target's permissions
    (0o644 for a new file) before the rename. On any error it is removed and
    ``path`` is left as it was; an :class:`OSError` becomes a ToolkitError.
    """
    path = as_path(path, "an output")
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise ToolkitError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """``path``, if a file (with ``folder``: a folder's files) can be written there.

    For checking an output before the work that fills it. It creates and removes
    a temporary file, or a temporary folder where folders are still missing (the
    writers create them), in the nearest existing folder on the way to ``path``,
    and leaves the tree as it was.

    Raises:
        ToolkitError: ``path`` is a folder (a file with ``folder``), a file stands
            where a folder is needed, or the system refuses to write there (one
            line naming the path and the reason).
    """
    path = as_path(path, "an output")
    if path.is_dir() and not folder:
        raise ToolkitError(f"cannot write {path}: it is a folder; give a file name")
    where = path if folder else path.parent
    nearest = where
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise ToolkitError(f"cannot write {path}: {nearest} is a file, not a folder")
    try:
        if nearest == where:
            fd, tmp = tempfile.mkstemp(prefix=".dynasplit-check.", dir=nearest)
            os.close(fd)
            os.unlink(tmp)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".dynasplit-check.", dir=nearest))
    except OSError as exc:
        raise ToolkitError(f"cannot write {path}: {exc.strerror or exc} (in {nearest})"
                           ) from None
    return path


def figure_format(path: str | os.PathLike) -> str:
    """The image format a figure file's suffix names (``png``, ``pdf``, ``svg``...).

    Raises:
        ToolkitError: a suffix matplotlib does not write (the valid ones named).
    """
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = as_path(path, "a figure file").suffix
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if suffix.lstrip(".").lower() not in formats:
        raise ToolkitError(f"cannot write figure {path}: unknown image format "
                           f"{suffix or '(no suffix)'}; valid: {choices(formats)}")
    return suffix.lstrip(".").lower()


def save_figure(fig: Any, path: str | os.PathLike, **savefig: Any) -> Path:
    """Save a matplotlib figure atomically, in the format its file name says.

    Raises:
        ToolkitError: an image format matplotlib does not write, or the file
            cannot be written.
    """
    fmt = figure_format(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=fmt, **savefig)
    return Path(path)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as CSV (no index column) atomically; returns the path.

    Raises:
        ToolkitError: the file cannot be written.
    """
    path = as_path(path, "a table file")
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def read_table(path: str | os.PathLike, kind: str, required: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file that must have the ``required`` columns.

    Args:
        path: the CSV file.
        kind: what the file should be, for messages (e.g. ``"DynaSplit
            simulation-pool CSV"``).
        required: column names that must be present.

    Returns:
        The table as read by :func:`pandas.read_csv`, with at least one row.

    Raises:
        ToolkitError: the file is missing, unreadable, not CSV, empty, or lacks
            required columns (all of them named).
    """
    path = as_path(path, f"a {kind}")
    if problem := not_a_file(path):
        raise ToolkitError(f"{kind} {path} {problem}")
    try:
        import pandas as pd

        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ToolkitError(f"{path} is empty; expected a {kind}") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise ToolkitError(f"{path} is not a {kind} ({first_line(exc)})") from None
    except OSError as exc:
        raise ToolkitError(f"cannot read {path}: {exc}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        header = str(df.columns[0]) if len(df.columns) == 1 else ""
        sep = next((s for s in (";", "\t", "|") if s in header), None)
        hint = (f" (its first line is separated by {sep!r}; the toolkit reads "
                "comma-separated files)" if sep else "")
        raise ToolkitError(f"{path} is not a {kind}: missing columns {choices(missing)}{hint}")
    if df.empty:
        raise ToolkitError(f"{path} has a header but no rows; expected a {kind}")
    return df


def check_table(data: Any, purpose: str, needs: Sequence[str], what: str) -> pd.DataFrame:
    """A table a function was given: a DataFrame as it is, a list of dicts as one;
    it must have the columns ``needs``.

    Args:
        data: the argument.
        purpose: the function (or figure), for messages.
        needs: the columns it cannot do without.
        what: where such a table comes from, for messages (e.g.
            ``"predict_table rows"``).

    Raises:
        ToolkitError: neither a table nor a list of dicts, or a missing column,
            named with ``purpose`` and ``what``.
    """
    import pandas as pd

    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        data = pd.DataFrame(data)
    if not isinstance(data, pd.DataFrame):
        raise ToolkitError(f"{purpose} needs a table ({what}), got {type(data).__name__}")
    missing = [c for c in needs if c not in data.columns]
    if missing:
        raise ToolkitError(f"{purpose}: the table has no column {choices(missing)}; it needs "
                           f"{choices(needs)} ({what})")
    return data


def _as_float(value: Any) -> float:
    """A cell as a float: ±inf for a number too large for one, NaN for no number."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if int(value) > 0 else -math.inf
    except (TypeError, ValueError):
        return math.nan


def numeric_column(df: pd.DataFrame, column: str, path: str | os.PathLike) -> pd.Series:
    """A column as floats; a value that is not a number is a ToolkitError naming its line."""
    import pandas as pd

    try:
        values = pd.to_numeric(df[column], errors="coerce")
    except OverflowError:  # pandas does not coerce an integer too large for a float
        values = pd.Series([_as_float(v) for v in df[column]], index=df.index, dtype=float)
    bad = values.isna() & df[column].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ToolkitError(
            f"{path} line {row + 2}: column {column!r} holds {df[column].iloc[row]!r}, "
            "not a number"
        )
    return values.astype(float)


def integer_column(df: pd.DataFrame, column: str, path: str | os.PathLike,
                   minimum: int = 0) -> pd.Series:
    """A column of whole numbers in ``minimum..2**53`` as int64; anything else (a
    missing cell, a fraction, inf, a huge number) is a ToolkitError naming its line."""
    import numpy as np

    from toolkit.tomlfile import LARGEST_INTEGER

    values = numeric_column(df, column, path)
    bad = ~np.isfinite(values) | (values != values.round()) | (values < minimum) \
        | (values > LARGEST_INTEGER)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ToolkitError(f"{path} line {row + 2}: column {column!r} holds "
                           f"{short_repr(df[column].iloc[row])}; "
                           f"expected an integer >= {minimum}")
    return values.astype(np.int64)


def utc_timestamp() -> str:
    """Now in UTC to the second, ISO 8601: the ``created_at`` of every file the toolkit writes."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def plain_value(value: Any) -> Any:
    """A NumPy scalar as the Python number or string it holds (what JSON and NetCDF
    attributes are written from); anything else as it is."""
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Read a JSON document, or raise a ToolkitError naming the file and what it should be.

    Args:
        path: the file.
        what: what the file should hold, for the message (e.g. ``"front file"``).
    """
    path = as_path(path, f"the {what}")
    if problem := not_a_file(path):
        raise ToolkitError(f"{what} {path} {problem}")
    try:
        return json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ToolkitError(f"{path} is not a readable JSON file ({exc})") from None
