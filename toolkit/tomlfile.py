"""One typed reader for the toolkit's TOML files (device profiles, testbed
inventories, the device controllers' settings tables) and for the keys of its
JSON documents (FRONT.json, POLICY.json).

:func:`read_toml` reads a file (errors name it); :class:`TypedTable` gives typed
access to one table (a JSON object), and every error names the file, the key
(dotted, e.g. ``power.busy_w`` or ``hosts[1].port``) and the value it expected.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError, choices, in_range, short_repr

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TypedTable", "kind_name", "read_toml"]

Kind = type | tuple[type, ...]


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed file; a missing, unreadable or malformed one is a ConfigError
    that says ``cannot read <what> <path>``."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


def kind_name(kind: Kind) -> str:
    """How an error names the expected type: ``an integer``, ``a number``..."""
    kinds = list(kind if isinstance(kind, tuple) else (kind,))
    if int in kinds and float in kinds:  # an integer is a number too
        kinds.remove(int)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table", bool: "true or false", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


#: the largest integer a file may give for a count, a port, an index (2**53: exact as a float)
LARGEST_INTEGER = 2**53


class TypedTable:
    """Typed access to one TOML table or JSON object, with errors naming the file and the key.

    Args:
        data: the table (anything else is refused with a message).
        path: the file it was read from.
        key: the table's own key (``""`` for the file's top level).
    """

    def __init__(self, data: Any, path: Path | str, key: str = "") -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: key '{key}' should be a table, got {data!r}")
        self.data, self.path, self.key = data, path, key

    def name(self, sub: str) -> str:
        """The full key of ``sub``, as errors print it."""
        return f"{self.key}.{sub}" if self.key else sub

    def fail(self, sub: str, expected: str, got: Any) -> ConfigError:
        """The error for a value of ``sub`` that is not what was ``expected``."""
        return ConfigError(f"{self.path}: key '{self.name(sub)}' should be {expected}, "
                           f"got {short_repr(got, 80)}")

    def get(self, sub: str, kind: Kind, default: Any = ...) -> Any:
        """The value at ``sub`` (dots walk into sub-tables), checked to be ``kind``
        (``bool`` only where ``kind`` names it); ``default`` where it is absent,
        else a ConfigError naming the missing key."""
        node: Any = self.data
        for part in sub.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    raise ConfigError(f"{self.path}: missing key '{self.name(sub)}'")
                return default
            node = node[part]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(node, bool) and bool not in kinds) or not isinstance(node, kinds):
            raise self.fail(sub, kind_name(kinds), node)
        return node

    def table(self, sub: str, default: Any = ...) -> TypedTable:
        """The sub-table at ``sub`` (``default``, a dict, where it is absent)."""
        return TypedTable(self.get(sub, dict, default), self.path, self.name(sub))

    def tables(self, sub: str, default: Any = ...) -> list[TypedTable] | None:
        """The list of tables at ``sub`` (``hosts[0]``, ``hosts[1]``... in errors);
        ``default`` where it is absent."""
        values = self.get(sub, list, default)
        if values is None:
            return None
        return [TypedTable(v, self.path, f"{self.name(sub)}[{i}]") for i, v in enumerate(values)]

    def subtables(self, scalars: Iterable[str] = (), example: str = "") -> dict[str, TypedTable]:
        """This table's sub-tables by name (e.g. one per accelerator), every key but
        ``scalars`` being one; at least one (``example`` shows one in the error)."""
        tables = {name: self.table(name) for name in self.data if name not in scalars}
        if not tables:
            raise ConfigError(f"{self.path}: [{self.key}] should have at least one sub-table"
                              f"{f', e.g. {example}' if example else ''}")
        return tables

    def counts(self, known: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
        """The keys of this table among ``known`` (at least one); a key neither
        ``known`` nor ``extra`` is refused."""
        known = tuple(known)
        self.reject_unknown((*known, *extra))
        keys = [k for k in self.data if k in known]
        if not keys:
            raise ConfigError(f"{self.path}: [{self.key}] should have at least one of "
                              f"{choices(known)}")
        return keys

    def number(self, sub: str, default: Any = ..., minimum: float = 0.0, *,
               strict: bool = True) -> float:
        """A finite number above ``minimum`` (at least ``minimum`` where not
        ``strict``); TOML's ``nan`` and ``inf`` are refused."""
        value = self.get(sub, (int, float), default)
        if not in_range(value, minimum, low_open=strict):
            raise self.fail(sub, f"a number {'>' if strict else '>='} {minimum:g}", value)
        return float(value)

    def integer(self, sub: str, default: Any = ..., minimum: int = 1) -> int:
        """An integer of at least ``minimum``."""
        value = self.get(sub, int, default)
        if value < minimum:
            raise self.fail(sub, f"an integer >= {minimum}", value)
        if value > LARGEST_INTEGER:
            raise self.fail(sub, "an integer <= 2**53", value)
        return value

    def numbers(self, sub: str, n: int | None = None, what: str = "",
                minimum: float | None = None) -> tuple[float, ...]:
        """A list of finite numbers (``n`` of them where given; ``what`` says per
        what), each at least ``minimum`` where given."""
        values = self.get(sub, list)
        if not all(in_range(v, -math.inf) for v in values):
            raise self.fail(sub, "a list of numbers", values)
        if minimum is not None and not all(v >= minimum for v in values):
            raise self.fail(sub, f"a list of numbers >= {minimum:g}", values)
        if n is not None and len(values) != n:
            raise ConfigError(f"{self.path}: key '{self.name(sub)}' should have {n} values"
                              f"{f' ({what})' if what else ''}, got {len(values)}")
        return tuple(float(v) for v in values)

    def strings(self, sub: str, default: Any = ...) -> list[str]:
        """A list of strings."""
        values = self.get(sub, list, default)
        if not all(isinstance(v, str) for v in values):
            raise self.fail(sub, "a list of strings", values)
        return values

    def one_of(self, sub: str, valid: Iterable[str], default: Any = ...) -> str:
        """A string among ``valid`` (``None`` allowed only as the default)."""
        valid = tuple(valid)
        value = self.get(sub, str, default)
        if value not in valid and not (value is None and default is None):
            raise self.fail(sub, f"one of {choices(valid)}", value)
        return value

    def file(self, sub: str, default: Any = None) -> Path | None:
        """A path; a relative one is taken relative to the file's folder."""
        value = self.get(sub, str, default)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.path).parent / p)

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        """Refuse a key outside ``allowed``, naming the valid ones."""
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise ConfigError(f"{self.path}: unknown key '{self.name(unknown[0])}'; "
                              f"valid keys: {choices(sorted(allowed))}")
