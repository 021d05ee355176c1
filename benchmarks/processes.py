"""Servers started by a benchmark: child processes stopped on exit, a free port, waiting for HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
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
        child = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
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
            raise RuntimeError(
                f"{child.args[0]} exited with {child.returncode}; see its log:\n{Path(log).read_text()[-3000:]}"
            )
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
        str(Path(sys.executable).with_name("gunicorn")),
        "portal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--threads",
        str(threads),
        "--timeout",
        "300",
        "--log-level",
        "warning",
    ]
    log = workdir / "gunicorn.log"
    child = processes.start(command, log, cwd=repository, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}{ready_path}", child, log)
    return base, port


def postgres_admin(server_url, statement):
    """Run one statement (CREATE/DROP DATABASE) on ``server_url``'s maintenance database, outside a transaction."""
    import psycopg2

    connection = psycopg2.connect(f"{server_url}/postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def wait_for_port(port, child=None, log=None, timeout=30):
    """Wait until something accepts TCP connections on 127.0.0.1:``port``; fail early when ``child`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise RuntimeError(
                f"{child.args[0]} exited with {child.returncode}; see its log:\n{Path(log).read_text()[-3000:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_redis(processes, workdir, port=None):
    """A private ``redis-server`` on ``port`` (a free one by default), no persistence; returns ``(child, port)``.

    Started again on the same port after a stop, it comes back empty (``--save ''``, no AOF).
    """
    port = port or free_port()
    log = Path(workdir) / f"redis-{port}.log"
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    child = processes.start(command, log, cwd=workdir)
    wait_for_port(port, child, log)
    return child, port


def gunicorn_workers(master):
    """The process ids of the workers of the gunicorn ``master`` (a Popen), from /proc (Linux)."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


class PostgresCluster:
    """A private PostgreSQL cluster (initdb, pg_ctl) in ``datadir``, listening on 127.0.0.1:``port`` only.

    PostgreSQL refuses to run as root, so as root its commands run as the ``postgres``
    user (``runuser``), which must own ``datadir``. ``bindir`` defaults to the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian's layout).
    """

    def __init__(self, datadir, port=None, bindir=None):
        self.datadir = Path(datadir)
        self.port = port or free_port()
        self.bindir = (
            Path(bindir)
            if bindir
            else max(
                Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                key=lambda p: int(p.parent.parent.name),
            ).parent
        )
        self.log = self.datadir.parent / f"postgres-{self.port}.log"

    def _run(self, *command, timeout=120):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, timeout=timeout, capture_output=True)

    def create(self):
        """initdb (trust authentication for local connections, no fsync: test data only)."""
        if os.geteuid() == 0:
            shutil.chown(self.datadir.parent, "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.datadir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        return self

    def pg_ctl(self, action, *options):
        """``pg_ctl start|stop|restart`` and wait for it (``-m fast`` stops, ending every session)."""
        self._run(
            str(self.bindir / "pg_ctl"),
            action,
            "-D",
            str(self.datadir),
            "-l",
            str(self.log),
            "-w",
            *options,
        )

    def start(self):
        self.pg_ctl("start")

    def stop(self):
        self.pg_ctl("stop", "-m", "fast")

    def restart(self):
        self.pg_ctl("restart", "-m", "fast")

    def url(self, database):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"
