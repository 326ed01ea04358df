"""Testbed inventories: shipped examples load, bad files fail naming file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.devices import available_testbeds, load_inventory
from toolkit.energy import open_meter
from toolkit.errors import ConfigError
from toolkit.hardware import load_profile
from toolkit.paths import PROFILES_DIR

SSH_HOST = """
[testbed]
name = "t"
kind = "ssh"

[[hosts]]
name = "pi"
address = "192.0.2.10"
user = "pi"
identity_file = "keys/id_ed25519"
known_hosts = "~/kh"
roles = ["edge"]
profile = "raspberry-pi-4"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bed.toml"
    path.write_text(text)
    return path


def test_shipped_testbeds_load():
    assert {"local", "pi-coral-gpu"} <= set(available_testbeds())
    local = load_inventory("local")
    assert local.kind == "local"
    assert [h.name for h in local.with_role("edge")] == ["edge"]
    assert local.host("edge").profile.name == "raspberry-pi-4"
    assert local.host("cloud").profile.name == "cloud-gpu-server"
    assert {h.address for h in local.hosts} == {"127.0.0.1"}
    real = load_inventory("pi-coral-gpu")
    assert real.kind == "ssh"
    pi, gpu = real.host("pi"), real.host("gpu")
    assert pi.address.startswith("192.0.2.") and gpu.address.startswith("192.0.2.")
    assert pi.identity_file is not None and not pi.agent and pi.verify_host_keys
    assert gpu.agent and gpu.identity_file is None
    assert pi.session_limit == 8  # below sshd's default MaxSessions 10
    (gpm,) = real.meters_for("pi")
    assert gpm.open_spec() == {"kind": "scpi", "address": "192.0.2.30:23", "transport": "tcp",
                               "period_s": 0.2, "name": "gpm"}
    assert real.meters_for("gpu")[0].open_spec() == {"kind": "nvml", "index": 0}


def test_paths_resolve_against_file_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    inv = load_inventory(write(tmp_path, SSH_HOST))
    host = inv.host("pi")
    assert host.identity_file == tmp_path / "keys" / "id_ed25519"
    assert host.known_hosts == tmp_path / "home" / "kh"
    assert host.port == 22 and host.max_sessions == 10


def test_profile_by_relative_path(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.toml").write_text(
        (PROFILES_DIR / "raspberry-pi-4.toml").read_text())
    text = SSH_HOST.replace('profile = "raspberry-pi-4"', 'profile = "profiles/mine.toml"')
    assert load_inventory(write(tmp_path, text)).host("pi").profile.path == (
        tmp_path / "profiles" / "mine.toml")


USER = 'user = "pi"\n'  # a line of SSH_HOST's host, to replace or to add a key after
PROFILE = 'profile = "raspberry-pi-4"'


@pytest.mark.parametrize(("old", "new", "message"), [
    (USER, USER + "port = 70000\n", "hosts[0].port' should be an integer in 1..65535"),
    (USER, USER + 'port = "22"\n', "hosts[0].port' should be an integer"),
    (USER, "", "missing key 'hosts[0].user'"),
    (USER, USER + "agent = true\n", "set exactly one"),
    ('identity_file = "keys/id_ed25519"\n', "", "hosts[0].identity_file"),
    ('roles = ["edge"]', 'roles = ["edge", "fog"]',
     "hosts[0].roles' should be a non-empty list of edge, cloud, meter"),
    (USER, USER + 'pasword = "x"\n', "unknown key 'hosts[0].pasword'"),
    ('kind = "ssh"', 'kind = "docker"', "testbed.kind' should be one of local, ssh"),
    (PROFILE, 'profile = "cloud-gpu-server"', "use a profile of role 'edge'"),
    (PROFILE, 'profile = "nope"', "hosts[0].profile': device profile 'nope' not found"),
    (USER, USER + "max_sessions = 0\n", "hosts[0].max_sessions' should be an integer >= 1"),
    (USER, USER + "command_timeout_s = -1\n",
     "hosts[0].command_timeout_s' should be a number > 0"),
])
def test_bad_hosts_name_file_key_and_expectation(tmp_path, old, new, message):
    assert old in SSH_HOST
    path = write(tmp_path, SSH_HOST.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_duplicate_host_names(tmp_path):
    text = SSH_HOST + SSH_HOST.split("[[hosts]]")[1].join(["\n[[hosts]]", ""])
    with pytest.raises(ConfigError, match=r"hosts\[1\]\.name' repeats the name 'pi'"):
        load_inventory(write(tmp_path, text))


def test_verify_host_keys_off_is_explicit(tmp_path):
    text = SSH_HOST.replace('known_hosts = "~/kh"', "verify_host_keys = false")
    host = load_inventory(write(tmp_path, text)).host("pi")
    assert host.verify_host_keys is False and host.known_hosts is None


@pytest.mark.parametrize(
    ("meter", "message"),
    [
        ('kind = "scpi"\nmeasures = "pi"', "missing key 'meters[0].address' (needed by scpi"),
        ('kind = "nvml"\nmeasures = "pi"', "missing key 'meters[0].host'"),
        ('kind = "scpi"\nmeasures = "gpu"\naddress = "x:23"',
         "meters[0].measures' should be one of pi"),
        ('kind = "wattsup"\nmeasures = "pi"',
         "meters[0].kind' should be one of rapl, nvml, ina219"),
        ('kind = "ina260"\nmeasures = "pi"\nhost = "pi"\ncalibration = "32V_2A"',
         "unknown key 'meters[0].calibration'"),
        ('kind = "ina219"\nmeasures = "pi"\nhost = "pi"\naddress = "0x40"',
         "meters[0].address' should be an integer"),
        ('kind = "rapl"\nmeasures = "pi"\nhost = "pi"\nperiod_s = "fast"',
         "meters[0].period_s' should be a number, got 'fast'"),
        # a model meter's own profile is loaded with the inventory, as a host's is
        ('kind = "model"\nmeasures = "pi"\nprofile = 3',
         "meters[0].profile' should be a string, got 3"),
        ('kind = "model"\nmeasures = "pi"\nprofile = "raspbery-pi-4"',
         "key 'meters[0].profile': device profile 'raspbery-pi-4' not found"),
    ],
)
def test_bad_meters(tmp_path, meter, message):
    path = write(tmp_path, SSH_HOST + f'\n[[meters]]\nname = "m"\n{meter}\n')
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_meter_specs_open_with_the_energy_factory(tmp_path):
    text = SSH_HOST + (
        '\n[[meters]]\nname = "ina"\nkind = "ina219"\nmeasures = "pi"\nhost = "pi"\n'
        'address = 0x41\n'
        '\n[[meters]]\nname = "est"\nkind = "model"\nmeasures = "pi"\n')
    ina, est = load_inventory(write(tmp_path, text)).meters
    assert ina.open_spec() == {"kind": "ina219", "address": 0x41, "name": "ina"}
    assert est.open_spec() == {"kind": "model", "profile": "raspberry-pi-4"}
    meter = open_meter(est.open_spec())  # the model meter needs no hardware
    assert meter.source == "model:raspberry-pi-4"


def test_a_model_meter_profile_path_is_relative_to_the_inventory(tmp_path, monkeypatch):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.toml").write_text(
        load_profile("raspberry-pi-3b").path.read_text())
    text = SSH_HOST + ('\n[[meters]]\nname = "est"\nkind = "model"\nmeasures = "pi"\n'
                       'profile = "profiles/mine.toml"\n')
    (est,) = load_inventory(write(tmp_path, text)).meters
    monkeypatch.chdir(tmp_path.parent)  # opened from another folder, as a testbed may be
    assert open_meter(est.open_spec()).source == "model:raspberry-pi-3b"


def test_unknown_testbed_names_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"shipped testbeds: .*local"):
        load_inventory("no-such-bed")
    with pytest.raises(ConfigError, match="has no host 'x'; hosts: edge, cloud"):
        load_inventory("local").host("x")
