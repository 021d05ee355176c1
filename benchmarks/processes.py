"""Servers started by a benchmark: child processes stopped on exit, a free port, waiting for HTTP."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class Processes:
    """Child processes started by a benchmark, each in its own process group; all stopped on exit."""

    def __init__(self):
        self.children = []

    def start(self, command, log, **kwargs):
        handle = open(log, "wb")
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        self.children.append((child, handle))
        return child

    def stop_all(self):
        for child, _ in reversed(self.children):
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        for child, handle in reversed(self.children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            handle.close()
        self.children = []


def free_port():
    """A port nobody listens on at 127.0.0.1 now (others may share this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url, child, log, timeout=60):
    """Wait until ``url`` answers (any HTTP status); fail early with the log when ``child`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{child.args[0]} exited with {child.returncode}; see its log:\n{Path(log).read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=30)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_gunicorn(processes, workdir, env, workers, threads, ready_path, repository):
    """``gunicorn portal.wsgi`` on a free port of 127.0.0.1 (gthread when ``threads`` > 1).

    Returns ``(base URL, port)`` once ``ready_path`` answers; its log is ``workdir/gunicorn.log``.
    """
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")), "portal.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--threads", str(threads),
        "--timeout", "300",
        "--log-level", "warning",
    ]
    log = workdir / "gunicorn.log"
    child = processes.start(command, log, cwd=repository, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}{ready_path}", child, log)
    return base, port
