"""`MockProcess`: the mock server in a child process, for tests, demos and benchmarks.

A separate process keeps the mock's CPU time out of the load generator's (and lets a benchmark pin
each to its own core); readiness comes from `--ready-file`, shutdown is a SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import TracebackType

POLL_INTERVAL_S = 0.02


class MockStartError(RuntimeError):
    """The mock process exited or did not become ready in time; the message ends with its output."""


class MockProcess:
    """Run `python -m locust_aiapi.mock --port 0 ARGS...` until `stop()` (or the end of a `with`).

    `url` is the base URL once started. Output goes to `log_path` (appended), or to a temporary file
    whose tail is quoted if the server fails to start. `cpu` pins the process to that core (Linux).
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        log_path: str | os.PathLike[str] | None = None,
        cpu: int | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.cpu = cpu
        self.startup_timeout_s = startup_timeout_s
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: str | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("MockProcess is not running")
        return self._process.pid

    def start(self) -> str:
        """Start the server and wait until it listens; returns the base URL."""
        if self._process is not None:
            raise RuntimeError("MockProcess is already running")
        self._workdir = tempfile.mkdtemp(prefix="locust-aiapi-mock-")
        ready_file = os.path.join(self._workdir, "ready")
        command = [
            sys.executable,
            "-m",
            "locust_aiapi.mock",
            "--port",
            "0",
            *self.args,
            "--ready-file",
            ready_file,
        ]
        with open(self._log_file(), "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            if self.cpu is not None:
                os.sched_setaffinity(self._process.pid, {self.cpu})
            self.url = self._wait_until_ready(ready_file)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (SIGKILL if it does not exit within `timeout_s`); returns the exit code."""
        process, self._process = self._process, None
        returncode = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                returncode = process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                returncode = process.wait()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return returncode

    def __enter__(self) -> MockProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _log_file(self) -> str:
        if self.log_path is not None:
            return os.fspath(self.log_path)
        assert self._workdir is not None
        return os.path.join(self._workdir, "mock.log")

    def _wait_until_ready(self, ready_file: str) -> str:
        assert self._process is not None
        deadline_s = time.monotonic() + self.startup_timeout_s
        while not os.path.exists(ready_file):
            if self._process.poll() is not None:
                raise MockStartError(
                    f"the mock server exited with code {self._process.returncode}{self._tail()}"
                )
            if time.monotonic() > deadline_s:
                raise MockStartError(
                    f"the mock server was not ready after {self.startup_timeout_s:g} s{self._tail()}"
                )
            time.sleep(POLL_INTERVAL_S)
        with open(ready_file, encoding="utf-8") as file:
            return file.read().strip()

    def _tail(self) -> str:
        try:
            with open(self._log_file(), "rb") as log:
                text = log.read()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f":\n{text}" if text else ""
