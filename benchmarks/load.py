"""Concurrent readers on the production set-up: how long opening a case takes, errors, and no save lost.

Starts the portal as in production on this machine's PostgreSQL and Redis (gunicorn
``--workers 2 --threads 4``, DEBUG off, a fresh database and media folder, a Celery worker
on the ``gpu`` and ``default`` queues), imports a synthetic cohort (``--studies`` studies
of 4 phases x ``--slices`` slices of ``--size``\\ :sup:`2`, each lesion with its reference
ROIs, every case in one reader study) and runs Locust headless on loopback against it
(``benchmarks/load_readers.py``): N readers (``--readers``, default 5, 20, 50), each with
their own token, open cases (QIDO-RS series + WADO-RS metadata of the 4 series + the
middle frame of each) and save an ROI and a call per lesion; beside them an uploader sends
a copy of a study (new UIDs) in batches and a training run (``source-study``, CM) keeps a
worker busy, restarted whenever none is queued or running.

Two loads: closed loop (no think time: what the server can take) and readers with a
think time (a case every ``--think`` 30-60 s, the pace of a real reading session), each
for every N, bounded in time (``--duration`` / ``--think-duration`` seconds). Closed loop
is measured on two servers in turn, interleaved per N, on the same database: the
metadata kept per process (``DICOMWEB_METADATA_CACHE_MB``, the default) and the same code
with it off (``=0``), whose ratio is the figure to read on a shared machine.

After each run the client's log (every save it sent, with the server's answer) is checked
against the database: every ROI and call the server confirmed is there exactly once
with the values sent (0 lost, 0 duplicated). Prints per run: p50/p95 of "open a case"
and of each request, case opens per second, failed requests, the check; then the N at
which p95 of "open a case" passes 2 s for each load. ``--json FILE`` writes it all.

    .venv/bin/pip install -r benchmarks/requirements.txt      # Locust, once
    .venv/bin/python benchmarks/load.py                       # ~15 min: 24 studies, 5/20/50 readers
    .venv/bin/python benchmarks/load.py --quick               # ~5 min smoke run (6 studies, N = 2, 8)
    .venv/bin/python benchmarks/load.py --studies 160 --slices 64 --duration 120   # the issue's cohort

The script stops by itself and removes its processes, database, temp folder and what it put
in its Redis database (``--redis``, refused unless empty at the start).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.processes import Processes, postgres_admin, start_gunicorn  # noqa: E402

BIN = Path(sys.executable).parent
P95_LIMIT_MS = 2000.0
CASE = "open a case"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--studies", type=int, default=24, help="cohort studies (default 24; the issue: 160)"
    )
    parser.add_argument("--slices", type=int, default=64, help="slices per series (default 64)")
    parser.add_argument("--size", type=int, default=256, help="Rows = Columns (default 256)")
    parser.add_argument(
        "--readers", default="5,20,50", help="comma-separated numbers of readers (default 5,20,50)"
    )
    parser.add_argument(
        "--loads", default="closed,think", help="closed (no think time), think, or both (default)"
    )
    parser.add_argument(
        "--duration", type=int, default=45, help="seconds per closed-loop run (default 45)"
    )
    parser.add_argument(
        "--think-duration", type=int, default=120, help="seconds per think-time run (default 120)"
    )
    parser.add_argument(
        "--think",
        default="30,60",
        help="think time between cases, LOW,HIGH seconds (default 30,60)",
    )
    parser.add_argument(
        "--no-compare", action="store_true", help="closed loop on the default server only"
    )
    parser.add_argument(
        "--warmup", type=int, default=15, help="seconds of unrecorded reading per server first"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes (default 2)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per worker (default 4)"
    )
    parser.add_argument("--no-upload", action="store_true", help="no uploader beside the readers")
    parser.add_argument(
        "--upload-interval", type=float, default=5.0, help="seconds between upload batches"
    )
    parser.add_argument(
        "--upload-batch", type=int, default=16, help="files per upload request (default 16)"
    )
    parser.add_argument(
        "--no-training", action="store_true", help="no Celery worker and training run"
    )
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server, as a URL without database name; a fresh database is made and dropped",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/15",
        help="Redis database of the Celery broker (must be empty; emptied again at the end)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 6 studies of 16 slices, 2 and 8 readers, 20 s runs, think 5-10 s",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this JSON file"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.studies, args.slices, args.readers = 6, 16, "2,8"
        args.duration = args.think_duration = 20
        args.think, args.warmup = "5,10", 5
    args.readers = [int(n) for n in args.readers.split(",")]
    args.loads = [load for load in args.loads.split(",") if load]
    args.think = [float(s) for s in args.think.split(",")]
    if (
        set(args.loads) - {"closed", "think"}
        or len(args.think) != 2
        or args.think[0] > args.think[1]
    ):
        parser.error("--loads takes closed and/or think; --think takes LOW,HIGH")
    return args


# ---------------------------------------------------------------- the portal


def _redis(args):
    import redis

    return redis.Redis.from_url(args.redis)


def portal_environment(args, workdir):
    """The environment of every process of the portal (and of this one): fresh database, media, broker."""
    if _redis(args).dbsize():
        raise SystemExit(
            f"the Redis database {args.redis} is not empty: name an empty one with --redis"
        )
    args.database = f"bench_load_{os.getpid()}"
    postgres_admin(args.postgres, f"CREATE DATABASE {args.database}")
    (workdir / "var" / "media").mkdir(parents=True)
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        DEID_SECRET=secrets.token_urlsafe(40),
        VAR_DIR=str(workdir / "var"),
        MEDIA_ROOT=str(workdir / "var" / "media"),
        DATABASE_URL=f"{args.postgres}/{args.database}",
        CELERY_BROKER_URL=args.redis,
        DJANGO_SETTINGS_MODULE="portal.settings",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPOSITORY,
        env=env,
        check=True,
    )
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DEBUG",
                "SECRET_KEY",
                "DEID_SECRET",
                "VAR_DIR",
                "MEDIA_ROOT",
                "DATABASE_URL",
                "CELERY_BROKER_URL",
                "DJANGO_SETTINGS_MODULE",
                "ALLOWED_HOSTS",
                "LOG_LEVEL",
            )
        }
    )
    import django

    django.setup()
    return env


def import_cohort(args, workdir):
    """The cohort through the ingest path, as ``make_cohort --import`` does: admin, reader study, files."""
    from django.contrib.auth.models import Group, User

    from cohort.files import write_cohort
    from cohort.importer import import_cohort as import_files
    from cohort.spec import CohortSpec
    from portal.roles import ADMIN, READER, ensure_roles

    ensure_roles()
    admin = User.objects.create_user(
        "bench-admin", password=secrets.token_urlsafe(16), is_staff=True, is_superuser=True
    )
    admin.groups.add(Group.objects.get(name=ADMIN))
    Group.objects.get(name=READER)
    start = time.monotonic()
    spec = CohortSpec(patients=args.studies, seed=args.seed, size=args.size, slices=args.slices)
    files = write_cohort(spec, workdir / "cohort")
    written = time.monotonic()
    summary = import_files(files, admin, "Load benchmark")
    print(
        f"cohort: {args.studies} studies of 4 x {args.slices} slices of {args.size}^2 written in "
        f"{written - start:.0f} s, imported in {time.monotonic() - written:.0f} s "
        f"({summary.lesions_created} lesions)",
        flush=True,
    )
    return admin, summary.reader_study, files


def catalogue(reader_study):
    """Every case of the reader study as a reader opens it: series per phase, middle slice, lesions."""
    from annotations.models import ROI, Lesion
    from archive.models import Instance

    cases = []
    for case in reader_study.cases.select_related("study").order_by("position", "id"):
        series = {}
        for one in case.study.series.all():
            uids = list(
                Instance.objects.filter(series=one)
                .order_by("slice_position", "instance_number", "id")
                .values_list("sop_instance_uid", flat=True)
            )
            series[one.phase] = {"uid": one.series_instance_uid, "middle": uids[len(uids) // 2]}
        lesions = []
        for lesion in Lesion.objects.filter(study=case.study).order_by("id"):
            roi = (
                ROI.objects.filter(lesion=lesion, is_reference=True, phase="CM")
                .select_related("series")
                .first()
            )
            if roi is not None:
                lesions.append(
                    {
                        "id": lesion.pk,
                        "roi": {
                            "series": roi.series.series_instance_uid,
                            "tool": roi.tool,
                            "sop_instance_uid": roi.sop_instance_uid,
                            "points": roi.points,
                        },
                    }
                )
        cases.append({"study": case.study.study_instance_uid, "series": series, "lesions": lesions})
    return cases


def make_readers(reader_study, prefix, n):
    """``n`` new readers assigned to the reader study, each with an API token."""
    from django.contrib.auth.models import Group, User

    from portal.authentication import issue_token
    from portal.roles import READER

    group = Group.objects.get(name=READER)
    readers = []
    for i in range(n):
        user = User.objects.create_user(f"{prefix}-{i + 1}")
        user.groups.add(group)
        readers.append(
            {"username": user.username, "token": issue_token(user, expires_days=0), "id": user.pk}
        )
    reader_study.readers.add(*[r["id"] for r in readers])
    return readers


class Training(threading.Thread):
    """Keeps one training run queued or running (started through the API as the admin), until stopped."""

    def __init__(self, base, token):
        super().__init__(daemon=True)
        self.base, self.token, self.started, self.errors = base, token, [], []
        self.stopping = threading.Event()

    def api(self, path, body=None):
        request = urllib.request.Request(
            f"{self.base}/api/v1/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def run(self):
        from django.db import connection

        from inference.models import TrainingRun

        try:
            while not self.stopping.wait(0 if not self.started else 5):
                if not TrainingRun.objects.filter(state__in=["queued", "running"]).exists():
                    try:
                        run = self.api(
                            "training-runs/", {"experiment": "source-study", "variant": "CM"}
                        )
                        self.started.append(run["id"])
                    except (urllib.error.URLError, OSError) as error:
                        self.errors.append(str(error))
        finally:
            connection.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)
        for pk in self.started:
            try:
                self.api(f"training-runs/{pk}/cancel/", {})
            except (urllib.error.URLError, OSError):
                pass
        from inference.models import TrainingRun

        return dict(TrainingRun.objects.filter(pk__in=self.started).values_list("pk", "state"))


# ---------------------------------------------------------------- one run


def run_locust(
    args, workdir, name, base, server_pids, readers, cases, reader_study, uploader, think, duration
):
    """One headless Locust run: rows of Locust's CSV, the client's log, failures, load averages, CPU seconds.

    CPU seconds are those of the gunicorn processes (``server_pids`` and children), of the
    PostgreSQL backends of this database and of the Locust client, during the run.
    """
    folder = workdir / "runs" / name
    folder.mkdir(parents=True)
    config = {
        "readers": readers,
        "cases": cases,
        "reader_study": reader_study.pk,
        "seed": args.seed,
        "think_s": think,
        "log": str(folder / "client.jsonl"),
        "uploader": uploader,
    }
    (folder / "config.json").write_text(json.dumps(config))
    command = [
        str(BIN / "locust"),
        "-f",
        str(REPOSITORY / "benchmarks" / "load_readers.py"),
        "--headless",
        "--host",
        base,
        "--users",
        str(len(readers) + (1 if uploader else 0)),
        "--spawn-rate",
        str(len(readers) + 1),
        "--run-time",
        f"{duration}s",
        "--stop-timeout",
        "60",
        "--csv",
        str(folder / "locust"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "Reader",
        *(["Uploader"] if uploader else []),
    ]
    load_before = os.getloadavg()[0]
    server_before, database_before = process_cpu(server_pids), process_cpu(database_backends())
    with open(folder / "locust.log", "wb") as log:
        client = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=dict(os.environ, LOAD_CONFIG=str(folder / "config.json")),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _, _, usage = os.wait4(client.pid, 0)  # the client's own CPU, from the kernel
        client.returncode = 0
    cpu = {
        "server": cpu_used(server_before, process_cpu(server_pids)),
        "database": cpu_used(database_before, process_cpu(database_backends())),
        "client": usage.ru_utime + usage.ru_stime,
    }
    with open(folder / "locust_stats.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    entries = [
        json.loads(line)
        for line in (folder / "client.jsonl").read_text().splitlines()
        if line.strip()
    ]
    failures = []
    if (folder / "locust_failures.csv").exists():
        with open(folder / "locust_failures.csv", newline="") as handle:
            failures = [
                f"{r['Occurrences']} x {r['Name']}: {r['Error'][:160]}"
                for r in csv.DictReader(handle)
            ]
    return rows, entries, failures, (load_before, os.getloadavg()[0]), cpu


def process_cpu(pids):
    """CPU seconds (user + system) so far of each live process of ``pids`` and of its children, by pid."""
    import psutil

    seconds = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def database_backends():
    """The PostgreSQL backends serving this benchmark's database (not this process's own)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def cpu_used(before, after):
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def percentile(values, q):
    """The q-th percentile (0-100), linear between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def check_saves(entries, readers):
    """Every ROI and call the server confirmed is in the database once, with the values sent."""
    from annotations.models import ROI, ReaderCall

    usernames = [r["username"] for r in readers]
    rows = list(
        ROI.objects.filter(created_by__username__in=usernames).values_list(
            "id", "points", "created_by__username"
        )
    )
    by_points = {}
    for pk, points, username in rows:
        by_points.setdefault((username, json.dumps(points)), []).append(pk)
    confirmed = [e for e in entries if e["kind"] == "roi" and e["id"] is not None]
    refused = [e for e in entries if e["kind"] == "roi" and e["id"] is None]
    lost_rois = sum(
        1
        for e in confirmed
        if e["id"] not in by_points.get((e["reader"], json.dumps(e["points"])), [])
    )
    sent = {(e["reader"], json.dumps(e["points"])) for e in confirmed + refused}
    doubled_rois = sum(len(pks) - 1 for pks in by_points.values()) + sum(
        len(pks) for key, pks in by_points.items() if key not in sent
    )
    stored_though_refused = sum(
        1 for e in refused if (e["reader"], json.dumps(e["points"])) in by_points
    )

    calls = {}
    for e in entries:
        if e["kind"] == "call" and e["id"] is not None:
            calls[(e["reader"], e["lesion"])] = e  # the last confirmed save of each call
    stored = {}
    for username, lesion, probability, locked_at, current in ReaderCall.objects.filter(
        reader__username__in=usernames
    ).values_list("reader__username", "lesion_id", "probability", "locked_at", "is_current"):
        stored.setdefault((username, lesion), []).append(
            (probability, locked_at is not None, current)
        )
    lost_calls = sum(
        1
        for key, e in calls.items()
        if not any(
            p == e["probability"] and current and (locked or not e["lock"])
            for p, locked, current in stored.get(key, [])
        )
    )
    doubled_calls = sum(len(rows) - 1 for rows in stored.values())
    return {
        "rois_confirmed": len(confirmed),
        "rois_in_database": len(rows),
        "rois_lost": lost_rois,
        "rois_duplicated": doubled_rois,
        "rois_refused": len(refused),
        "rois_stored_though_refused": stored_though_refused,
        "calls_confirmed": len(calls),
        "calls_in_database": len(stored),
        "calls_lost": lost_calls,
        "calls_duplicated": doubled_calls,
    }


def summarise(name, load, n, server, rows, entries, failures, loads, cpu, duration, check):
    cases = [e["ms"] for e in entries if e["kind"] == "case"]
    ok_cases = [e["ms"] for e in entries if e["kind"] == "case" and e["ok"]]
    requests = {
        r["Name"]: {
            "count": int(r["Request Count"]),
            "failed": int(r["Failure Count"]),
            "p50_ms": float(r["50%"] or 0),
            "p95_ms": float(r["95%"] or 0),
        }
        for r in rows
        if r["Name"] != "Aggregated"
    }
    failed = sum(v["failed"] for k, v in requests.items() if k != CASE)
    uploads = [e for e in entries if e["kind"] == "upload"]
    return {
        "run": name,
        "load": load,
        "readers": n,
        "server": server,
        "seconds": duration,
        "case_opens": len(cases),
        "case_opens_per_s": len(ok_cases) / duration,
        "case_p50_ms": percentile(cases, 50),
        "case_p95_ms": percentile(cases, 95),
        "failed_requests": failed,
        "requests": requests,
        "failures": failures[:8],
        "uploaded_files": sum(e["stored"] or 0 for e in uploads),
        "upload_failures": sum(1 for e in uploads if e["stored"] is None),
        "load_average": loads,
        "saves": check,
        "cpu_s": cpu,
        "cpu_ms_per_case": {k: 1000 * v / max(len(ok_cases), 1) for k, v in cpu.items()},
    }


def seconds(ms):
    return "-" if ms is None else f"{ms / 1000:.2f}"


def print_run(r):
    c, cpu = r["saves"], r["cpu_ms_per_case"]
    print(
        f"\n== {r['run']}: {r['case_opens']} case opens ({r['case_opens_per_s']:.2f}/s), open a case "
        f"p50 {seconds(r['case_p50_ms'])} s, p95 {seconds(r['case_p95_ms'])} s, "
        f"{r['failed_requests']} failed requests; load average {r['load_average'][0]:.1f} -> "
        f"{r['load_average'][1]:.1f}",
        flush=True,
    )
    print(
        f"   CPU per case opened (its saves and the uploader's share included): server "
        f"{cpu['server']:.0f} ms, PostgreSQL {cpu['database']:.0f} ms, client {cpu['client']:.0f} ms"
    )
    for name, q in sorted(r["requests"].items()):
        print(
            f"   {name:26s} {q['count']:6d} requests {q['failed']:4d} failed  "
            f"p50 {q['p50_ms']:6.0f} ms  p95 {q['p95_ms']:6.0f} ms"
        )
    print(
        f"   ROIs: {c['rois_confirmed']} confirmed, {c['rois_lost']} lost, "
        f"{c['rois_duplicated']} duplicated ({c['rois_refused']} refused, "
        f"{c['rois_stored_though_refused']} of them stored anyway)"
    )
    print(
        f"   calls: {c['calls_confirmed']} confirmed, {c['calls_lost']} lost, "
        f"{c['calls_duplicated']} duplicated; uploads: {r['uploaded_files']} files stored, "
        f"{r['upload_failures']} batches failed"
    )
    for failure in r["failures"]:
        print(f"   failure: {failure}")


def crossing(results, load, server):
    """The smallest N whose p95 of opening a case is above 2 s, or None."""
    for r in sorted(results, key=lambda r: r["readers"]):
        if r["load"] == load and r["server"] == server and (r["case_p95_ms"] or 0) > P95_LIMIT_MS:
            return r["readers"]
    return None


def print_table(results, args):
    print(
        "\n| load | readers | server | case opens/s | open a case p50 / p95 (s) | failed requests "
        "| server CPU per case (ms) | ROIs / calls saved (lost, duplicated) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        c = r["saves"]
        lost, doubled = (
            c["rois_lost"] + c["calls_lost"],
            c["rois_duplicated"] + c["calls_duplicated"],
        )
        print(
            f"| {r['load']} | {r['readers']} | {r['server']} | {r['case_opens_per_s']:.2f} "
            f"| {seconds(r['case_p50_ms'])} / {seconds(r['case_p95_ms'])} | {r['failed_requests']} "
            f"| {r['cpu_ms_per_case']['server']:.0f} "
            f"| {c['rois_confirmed']} / {c['calls_confirmed']} ({lost}, {doubled}) |"
        )
    for load in args.loads:
        for server in sorted({r["server"] for r in results if r["load"] == load}):
            n = crossing(results, load, server)
            where = f"N = {n}" if n else f"none of N = {','.join(map(str, args.readers))}"
            print(f"{load}, {server}: p95 of opening a case passes 2 s at {where}")
    kept = {
        r["readers"]: r for r in results if r["load"] == "closed" and r["server"] == "metadata kept"
    }
    for built in results:
        new = kept.get(built["readers"]) if built["server"] == "metadata built" else None
        if new is not None:
            cpu = built["cpu_ms_per_case"]["server"] / max(new["cpu_ms_per_case"]["server"], 1e-9)
            rate = new["case_opens_per_s"] / max(built["case_opens_per_s"], 1e-9)
            p95 = (built["case_p95_ms"] or 0) / max(new["case_p95_ms"] or 1, 1)
            print(
                f"closed loop, {built['readers']} readers: server CPU per case built/kept {cpu:.2f}, "
                f"case opens/s kept/built {rate:.2f}, p95 built/kept {p95:.2f}"
            )


# ---------------------------------------------------------------- main


def main(argv=None):
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    processes = Processes()
    training = None
    results = []
    try:
        env = portal_environment(args, workdir)
        admin, reader_study, files = import_cohort(args, workdir)
        cases = catalogue(reader_study)
        from portal.authentication import issue_token

        admin_token = issue_token(admin, expires_days=0)
        servers, pids = {}, {}
        if "closed" in args.loads and not args.no_compare:
            (workdir / "built").mkdir()
            servers["metadata built"], _ = start_gunicorn(
                processes,
                workdir / "built",
                dict(env, DICOMWEB_METADATA_CACHE_MB="0"),
                args.workers,
                args.threads,
                "/accounts/login/",
                REPOSITORY,
            )
            pids["metadata built"] = [processes.children[-1][0].pid]
        servers["metadata kept"], _ = start_gunicorn(
            processes, workdir, env, args.workers, args.threads, "/accounts/login/", REPOSITORY
        )
        pids["metadata kept"] = [processes.children[-1][0].pid]
        if not args.no_training:
            processes.start(
                [
                    str(BIN / "celery"),
                    "-A",
                    "portal",
                    "worker",
                    "-Q",
                    "gpu,default",
                    "-c",
                    "1",
                    "-l",
                    "WARNING",
                ],
                workdir / "worker.log",
                cwd=REPOSITORY,
                env=env,
            )
            training = Training(servers["metadata kept"], admin_token)
            training.start()
        uploader = (
            None
            if args.no_upload
            else {
                "token": admin_token,
                "batch": args.upload_batch,
                "interval_s": args.upload_interval,
                "studies": [
                    [str(p) for s in study.series.values() for p in s.paths]
                    for study in files.studies
                ],
            }
        )
        print(
            f"servers: {servers}; {len(cases)} cases; machine load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for server, base in servers.items():
            run_locust(
                args,
                workdir,
                f"warm-up {server}",
                base,
                pids[server],
                make_readers(reader_study, f"warm{len(results)}-{server[9:]}", 8),
                cases,
                reader_study,
                None,
                None,
                args.warmup,
            )
        runs = []
        for load in args.loads:
            for n in args.readers:
                for server in servers if load == "closed" else ["metadata kept"]:
                    runs.append((load, n, server))
        for number, (load, n, server) in enumerate(runs, start=1):
            name = f"{load} {n} readers {server}"
            readers = make_readers(reader_study, f"run{number}", n)
            duration = args.duration if load == "closed" else args.think_duration
            rows, entries, failures, loads, cpu = run_locust(
                args,
                workdir,
                name,
                servers[server],
                pids[server],
                readers,
                cases,
                reader_study,
                uploader,
                None if load == "closed" else args.think,
                duration,
            )
            result = summarise(
                name,
                load,
                n,
                server,
                rows,
                entries,
                failures,
                loads,
                cpu,
                duration,
                check_saves(entries, readers),
            )
            print_run(result)
            results.append(result)
        print_table(results, args)
        if training is not None:
            states = training.stop()
            training = None
            kinds = ", ".join(sorted(set(states.values())))
            print(f"training runs started in the background: {len(states)} ({kinds})")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "arguments": {k: v for k, v in vars(args).items() if k != "json"},
                        "results": results,
                    },
                    indent=1,
                    default=str,
                )
            )
    finally:
        if training is not None:
            training.stop()
        processes.stop_all()
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        if getattr(args, "database", None):
            postgres_admin(args.postgres, f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
            _redis(args).flushdb()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
