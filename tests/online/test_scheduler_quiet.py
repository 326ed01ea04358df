"""The exported scheduler in dry run writes nothing on stderr but its JSON stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from toolkit.cli import main


def test_exported_dry_run_stderr_holds_only_json(toy, tmp_path):
    _, cube_path, front_path, _ = toy
    out = tmp_path / "export"
    assert main(["export", str(front_path), "--cube", str(cube_path),
                 "-o", str(out / "policy.json"), "--script", str(out / "scheduler.py")]) == 0
    lines = [json.dumps({"id": i, "deadline_ms": 100 + 50 * i, "input": i}) for i in range(5)]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}   # no TF_CPP_MIN_LOG_LEVEL from the suite
    if "PYTHONPATH" in os.environ:                    # the toolkit under test (a worktree)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    proc = subprocess.run([sys.executable, "-W", "error", str(out / "scheduler.py"), "--dry-run"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(a["id"] for a in answers) == list(range(5))
    for line in proc.stderr.splitlines():    # the closing stats (and any JSON log line)
        assert isinstance(json.loads(line), dict), line
