"""A worker never outlives the local process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil


def test_workers_stop_when_their_controller_is_killed(tmp_path):
    code = ("import sys, time\n"
            "from toolkit.runtime import WorkerProcess, worker_command\n"
            "w = WorkerProcess(worker_command('cloud', 'digits-cnn'),\n"
            f"                  {str(tmp_path)!r} + '/c.log')\n"
            "print(w.pid, flush=True)\n"
            "time.sleep(600)\n")
    controller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  text=True, stdin=subprocess.DEVNULL)
    try:
        worker_pid = int(controller.stdout.readline())
        assert psutil.pid_exists(worker_pid)
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        deadline = time.time() + 20
        while time.time() < deadline:
            if not psutil.pid_exists(worker_pid) or psutil.Process(
                    worker_pid).status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.1)
        else:
            os.kill(worker_pid, signal.SIGKILL)
            raise AssertionError("the worker outlived its killed controller")
        assert "controller process" in (tmp_path / "c.log").read_text()
    finally:
        controller.kill()
        controller.stdout.close()
