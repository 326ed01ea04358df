"""The one typed TOML reader: every error names the file, the key and the expected value."""

from __future__ import annotations

import pytest

from toolkit.errors import ConfigError
from toolkit.tomlfile import TypedTable, read_toml


def test_read_toml_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[cpu\n")
    with pytest.raises(ConfigError, match=f"cannot read device profile {bad}"):
        read_toml(bad, "device profile")
    with pytest.raises(ConfigError, match="cannot read testbed"):
        read_toml(tmp_path / "missing.toml", "testbed")


def test_typed_keys_dotted_tables_and_their_errors(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[cpu]\nfreqs = [600, 1800]\ncores = 4\nfast = true\nname = "pi"\n'
                    '[[hosts]]\nport = "22"\nfile = "keys/id"\n')
    top = TypedTable(read_toml(path, "profile"), path)
    assert top.numbers("cpu.freqs", 2) == (600.0, 1800.0)
    assert top.get("cpu.cores", int) == 4 and top.get("cpu.fast", bool) is True
    assert top.get("cpu.missing", int, 7) == 7
    cpu = top.table("cpu")
    assert cpu.one_of("name", ["pi", "jetson"]) == "pi"
    host = TypedTable(top.get("hosts", list)[0], path, "hosts[0]")
    assert host.file("file") == tmp_path / "keys" / "id"
    cases = [
        (lambda: top.get("cpu.fast", int), "key 'cpu.fast' should be an integer, got True"),
        (lambda: cpu.get("cores", str), "key 'cpu.cores' should be a string, got 4"),
        (lambda: top.get("cpu.gpu", int), "missing key 'cpu.gpu'"),
        (lambda: top.numbers("cpu.freqs", 3, "one per frequency"),
         r"key 'cpu.freqs' should have 3 values \(one per frequency\), got 2"),
        (lambda: cpu.one_of("name", ["jetson"]), "key 'cpu.name' should be one of"),
        (lambda: host.number("port", 22.0), "key 'hosts\\[0\\].port' should be a number"),
        (lambda: top.strings("cpu.freqs"), "key 'cpu.freqs' should be a list of strings"),
        (lambda: cpu.reject_unknown(["freqs", "cores", "name"]),
         "unknown key 'cpu.fast'; valid keys: "),
        (lambda: TypedTable([1], path, "meters[0]"), "key 'meters\\[0\\]' should be a table"),
    ]
    for call, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            call()
        assert str(path) in str(info.value)


@pytest.mark.parametrize(("call", "message"), [
    (lambda t: t.number("nan"), "key 'nan' should be a number > 0, got nan"),
    (lambda t: t.number("inf", ..., 0.0, strict=False), "key 'inf' should be a number >= 0"),
    (lambda t: t.number("huge"), r"key 'huge' should be a number > 0, got 1000+\.\.\.$"),
    (lambda t: t.numbers("list"), "key 'list' should be a list of numbers"),
    (lambda t: t.numbers("negative", minimum=0), "key .negative. should be a list of numbers >= 0"),
    (lambda t: t.integer("huge"), r"key 'huge' should be an integer <= 2\*\*53"),
    (lambda t: t.integer("zero"), "key 'zero' should be an integer >= 1, got 0"),
])
def test_numbers_are_finite_and_in_range(call, message):
    """TOML has nan and inf, JSON has integers of any length: each is named, none is taken
    and none overflows into a traceback."""
    table = TypedTable({"nan": float("nan"), "inf": float("inf"), "huge": 10**400,
                        "list": [1.0, 10**400], "negative": [1.0, -2.0], "zero": 0}, "f.toml")
    with pytest.raises(ConfigError, match=f"f.toml: {message}"):
        call(table)
