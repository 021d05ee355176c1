"""Ingest and retrieval throughput of the archive, side by side with Orthanc.

Uploads a generated 4-phase CT study (4 series x 64 slices of 512 x 512, 16-bit,
Explicit VR Little Endian) through the REST API and STOW-RS and reads it back
(QIDO-RS, WADO-RS metadata, frames, whole instances). The anchor is Orthanc with
its DICOMweb plugin, fed the same files in the same run. Each measurement is
interleaved, ours then Orthanc, for ``--pairs`` pairs; the table gives every
pair's figures, the per-pair ratio ours/Orthanc (> 1: ours is faster) and medians.
Every figure is a rate (instances/s, frames/s, requests/s): higher is better.

Set-up (printed with the results):
- Orthanc 1.10+ (Debian ``orthanc`` + ``orthanc-dicomweb``) in a temp folder: its own
  storage and index, HTTP compression off, authentication off, DICOM port off.
- Ours as in production: ``gunicorn portal.wsgi`` with ``--workers`` processes and
  ``--threads`` threads each, DEBUG off, SECRET_KEY set, a fresh SQLite database and
  media folder in a temp folder, migrations applied, a user in the reader role
  authenticating with a DRF token.
- Orthanc cannot bind to 127.0.0.1 only, so both servers and this client run in a
  private network namespace that has only a loopback interface (needs root and
  ``ip netns``). ``--ours-only`` needs no namespace: gunicorn binds 127.0.0.1.
- Compression off on both sides (no gzip middleware here; the client asks for
  ``Accept-Encoding: identity``).
- Every ingest measurement sends a fresh copy of the study (new UIDs, same pixels) to
  both servers; the copy is deleted again on both sides afterwards so each round
  starts from the same archive (the retrieval study stays).

Run from the repository root::

    .venv/bin/python benchmarks/ingest.py            # full: 4 x 64 slices, 512^2, 5 pairs
    .venv/bin/python benchmarks/ingest.py --quick    # smoke: 4 x 16 slices, 2 pairs
    .venv/bin/python benchmarks/ingest.py --quick --ours-only

The script stops by itself and removes its processes, namespace and temp folders.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.processes import Processes, free_port, postgres_admin, start_gunicorn, wait_for_http  # noqa: E402

ORTHANC_PLUGIN_DIRS = (
    "/usr/share/orthanc/plugins",
    "/usr/lib/orthanc/plugins",
    "/usr/lib/x86_64-linux-gnu/orthanc/plugins",
)
OUR_PORT = None  # chosen at start
ORTHANC_PORT = None
FRAME_MEDIA_TYPES = ("application/octet-stream",)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 16 slices per series, 2 pairs"
    )
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="measure only our server (no Orthanc, no namespace)",
    )
    parser.add_argument(
        "--slices", type=int, default=None, help="slices per series (default 64; 16 with --quick)"
    )
    parser.add_argument("--size", type=int, default=512, help="Rows = Columns (default 512)")
    parser.add_argument(
        "--pairs", type=int, default=None, help="A/B pairs (default 5; 2 with --quick)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes (default 2)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per worker (default 4, gthread)"
    )
    parser.add_argument(
        "--rest-batch", type=int, default=16, help="files per request, our batched REST upload"
    )
    parser.add_argument("--stow-batch", type=int, default=32, help="instances per STOW-RS request")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this JSON file"
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="ours on a fresh SQLite file (default) or a fresh PostgreSQL database (dropped afterwards)",
    )
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@%2Fvar%2Frun%2Fpostgresql",
        help="PostgreSQL server for --database postgres, as a URL without database name (default: the local "
        "Unix socket, which the private network namespace still reaches)",
    )
    parser.add_argument("--no-netns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.slices = args.slices or (16 if args.quick else 64)
    args.pairs = args.pairs or (2 if args.quick else 5)
    return args


# ---------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    dicomweb_url: str
    headers: dict = field(default_factory=dict)
    drop_study: object = None  # callable(StudyInstanceUID)


def database_url(args, workdir):
    """A fresh database for our server: a SQLite file in ``workdir``, or a new PostgreSQL database."""
    if args.database == "sqlite":
        return f"sqlite:///{workdir / 'var' / 'portal.sqlite3'}"
    args.postgres_name = f"bench_ingest_{os.getpid()}"
    postgres_admin(args.postgres, f"CREATE DATABASE {args.postgres_name}")
    return f"{args.postgres}/{args.postgres_name}"


def drop_database(args):
    name = getattr(args, "postgres_name", None)
    if name is None:
        return
    from django.db import connections

    connections.close_all()
    postgres_admin(args.postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_ours(args, workdir, processes):
    """Fresh SQLite + media in ``workdir``, migrations, a reader with a token, gunicorn on 127.0.0.1."""
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        DEID_SECRET=secrets.token_urlsafe(40),
        VAR_DIR=str(workdir / "var"),
        MEDIA_ROOT=str(workdir / "var" / "media"),
        DATABASE_URL=database_url(args, workdir),
        DJANGO_SETTINGS_MODULE="portal.settings",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("CELERY_BROKER_URL", None)
    (workdir / "var" / "media").mkdir(parents=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPOSITORY,
        env=env,
        check=True,
    )
    # This process shares the database (to make the user and to delete ingested copies).
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
                "DJANGO_SETTINGS_MODULE",
                "LOG_LEVEL",
            )
        }
    )
    import django

    django.setup()
    from django.contrib.auth.models import Group, User

    from portal.authentication import issue_token
    from portal.roles import READER, ensure_roles

    ensure_roles()
    user = User.objects.create_user("bench-reader", password=secrets.token_urlsafe(16))
    user.groups.add(Group.objects.get(name=READER))
    token = issue_token(user)

    global OUR_PORT
    _, OUR_PORT = start_gunicorn(
        processes, workdir, env, args.workers, args.threads, "/dicomweb/studies", REPOSITORY
    )
    return Server(
        name="ours",
        dicomweb_url=f"http://127.0.0.1:{OUR_PORT}/dicomweb",
        headers={"Authorization": f"Token {token}", "Accept-Encoding": "identity"},
        drop_study=_drop_ours,
    )


def _drop_ours(study_uid):
    """Remove an ingested copy (rows and files) so every round starts from the same archive."""
    from django.core.files.storage import default_storage
    from django.db import transaction

    from archive.models import Instance, Series, Study, Upload

    instances = Instance.objects.filter(series__study__study_instance_uid=study_uid)
    names = list(instances.values_list("file", flat=True))
    uploads = set(instances.values_list("upload_id", flat=True))
    with transaction.atomic():
        instances.delete()
        Series.objects.filter(study__study_instance_uid=study_uid).delete()
        Study.objects.filter(study_instance_uid=study_uid).delete()
        Upload.objects.filter(id__in=uploads).delete()
    for name in names:
        default_storage.delete(name)


def find_orthanc_plugin():
    for folder in ORTHANC_PLUGIN_DIRS:
        for candidate in (
            sorted(Path(folder).glob("libOrthancDicomWeb*.so*")) if Path(folder).is_dir() else []
        ):
            return candidate
    found = subprocess.run(
        ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True
    ).stdout.split()
    for path in found:
        if "DicomWeb" in path and ".so" in path and Path(path).is_file():
            return Path(path)
    raise RuntimeError(
        "the Orthanc DICOMweb plugin is not installed (apt-get install -y orthanc orthanc-dicomweb)"
    )


def start_orthanc(workdir, processes):
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).exists():
        raise RuntimeError("Orthanc is not installed (apt-get install -y orthanc orthanc-dicomweb)")
    global ORTHANC_PORT
    ORTHANC_PORT = free_port()
    folder = workdir / "orthanc"
    folder.mkdir()
    config = {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "StorageCompression": False,
        "HttpPort": ORTHANC_PORT,
        "HttpCompressionEnabled": False,
        "AuthenticationEnabled": False,
        "RemoteAccessAllowed": False,
        "DicomServerEnabled": False,
        "SaveJobs": False,
        "Plugins": [str(find_orthanc_plugin())],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = workdir / "orthanc.log"
    child = processes.start([binary, str(folder / "orthanc.json")], log, cwd=folder)
    wait_for_http(f"http://127.0.0.1:{ORTHANC_PORT}/system", child, log)
    version = _orthanc_versions()
    return Server(
        name="Orthanc " + version,
        dicomweb_url=f"http://127.0.0.1:{ORTHANC_PORT}/dicom-web",
        headers={"Accept-Encoding": "identity"},
        drop_study=_drop_orthanc,
    )


def _orthanc_versions():
    import requests

    system = requests.get(f"http://127.0.0.1:{ORTHANC_PORT}/system", timeout=10).json()
    plugin = requests.get(f"http://127.0.0.1:{ORTHANC_PORT}/plugins/dicom-web", timeout=10).json()
    return f"{system.get('Version')} + DICOMweb {plugin.get('Version')}"


def _drop_orthanc(study_uid):
    import requests

    base = f"http://127.0.0.1:{ORTHANC_PORT}"
    for found in requests.post(f"{base}/tools/lookup", data=study_uid, timeout=60).json():
        if found.get("Type") == "Study":
            requests.delete(f"{base}/studies/{found['ID']}", timeout=300).raise_for_status()


# ---------------------------------------------------------------- data


class StudyCopies:
    """The generated study once (pixels), re-stamped with fresh UIDs for every ingest round."""

    def __init__(self, slices, size):
        from tests.factories.dicom import make_ct_study

        self.by_phase = make_ct_study(n=slices, Rows=size, Columns=size)
        self.datasets = [ds for series in self.by_phase.values() for ds in series]

    def fresh(self):
        """New Study/Series/SOP Instance UIDs on every dataset; returns (study UID, datasets, Part 10 bytes)."""
        from pydicom.uid import generate_uid

        from tests.factories.dicom import dataset_bytes

        study_uid = generate_uid()
        for series in self.by_phase.values():
            series_uid = generate_uid()
            for ds in series:
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = series_uid
                ds.SOPInstanceUID = generate_uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return study_uid, self.datasets, [dataset_bytes(ds) for ds in self.datasets]


# ---------------------------------------------------------------- clients and measurements


def dicomweb_client(server):
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=server.dicomweb_url, headers=dict(server.headers))
    # One body per request: Host without port, and no chunked upload (see the module docstring).
    client.set_chunk_size(10**9)
    return client


def _session(server):
    import requests

    session = requests.Session()
    session.headers.update(server.headers)
    return session


def _chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def ingest_rest(server, files, batch):
    """Instances/s: POST /api/v1/uploads/ (ours, ``batch`` files per request) or POST /instances
    (Orthanc, 1 per request).

    One file per request goes to both servers the same way: the file as the body,
    ``Content-Type: application/dicom``; a batch goes to ours as multipart ``files``.
    """
    session = _session(server)
    start = time.perf_counter()
    if server.name == "ours" and batch == 1:
        url = server.dicomweb_url.replace("/dicomweb", "/api/v1/uploads/")
        for data in files:
            _check(
                session.post(
                    url, data=data, headers={"Content-Type": "application/dicom"}, timeout=600
                ),
                201,
            )
    elif server.name == "ours":
        for chunk in _chunks(files, batch):
            response = session.post(
                server.dicomweb_url.replace("/dicomweb", "/api/v1/uploads/"),
                files=[
                    ("files", (f"IM{i:04d}.dcm", data, "application/dicom"))
                    for i, data in enumerate(chunk)
                ],
                timeout=600,
            )
            _check(response, 201)
    else:
        for data in files:
            response = session.post(
                server.dicomweb_url.replace("/dicom-web", "/instances"),
                data=data,
                headers={"Content-Type": "application/dicom"},
                timeout=600,
            )
            _check(response, 200)
    return len(files) / (time.perf_counter() - start)


def ingest_stow(server, datasets, batch):
    """Instances/s: dicomweb-client ``store_instances`` in batches."""
    client = dicomweb_client(server)
    start = time.perf_counter()
    for chunk in _chunks(datasets, batch):
        response = client.store_instances(chunk)
        if response.get("FailedSOPSequence"):
            raise RuntimeError(
                f"{server.name}: STOW-RS refused instances: {response.FailedSOPSequence}"
            )
    return len(datasets) / (time.perf_counter() - start)


def _check(response, expected):
    if response.status_code != expected:
        raise RuntimeError(
            f"{response.request.method} {response.url}: {response.status_code} {response.text[:500]}"
        )


def _rate(count, call):
    """(items/s, CPU milliseconds this client process spent per item)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / count


def _parallel_rate(jobs, threads, make_worker):
    """(items/s, client CPU ms per item) over ``jobs`` split across ``threads`` clients (each with its own session)."""
    workers = [make_worker() for _ in range(threads)]
    shares = [jobs[i::threads] for i in range(threads)]
    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda pair: [pair[0](job) for job in pair[1]], zip(workers, shares)))
    return len(jobs) / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / len(jobs)


def measure_reads(server, reference, repeats):
    """``{measurement: (rate, client CPU ms per item)}`` of the reads of the retrieval study.

    The client's own CPU time (``dicomweb-client`` and ``requests`` parsing the answers, in
    this process) is the same work for both servers: it bounds how far apart their rates
    can be on a 2-core machine where client and server share the cores.
    """
    study_uid, series_uid, instances = reference
    client = dicomweb_client(server)
    figures = {}
    figures["QIDO studies (queries/s)"] = _rate(repeats, lambda: client.search_for_studies())
    figures["QIDO instances of a series (queries/s)"] = _rate(
        repeats,
        lambda: _expect(
            len(client.search_for_instances(study_uid, series_uid)), len(instances[series_uid])
        ),
    )
    figures["WADO-RS series metadata (requests/s)"] = _rate(
        repeats,
        lambda: _expect(
            len(client.retrieve_series_metadata(study_uid, series_uid)), len(instances[series_uid])
        ),
    )
    jobs = [(series, sop) for series, sops in instances.items() for sop in sops]

    def frame_worker():
        own = dicomweb_client(server)

        def fetch(job):
            frames = own.retrieve_instance_frames(
                study_uid, job[0], job[1], frame_numbers=[1], media_types=FRAME_MEDIA_TYPES
            )
            _expect(len(frames), 1)

        return fetch

    def instance_worker():
        own = dicomweb_client(server)
        return lambda job: own.retrieve_instance(study_uid, job[0], job[1])

    figures["WADO-RS frames, 1 client (frames/s)"] = _parallel_rate(jobs, 1, frame_worker)
    figures["WADO-RS frames, 4 threads (frames/s)"] = _parallel_rate(jobs, 4, frame_worker)
    figures["WADO-RS instances, 1 client (instances/s)"] = _parallel_rate(jobs, 1, instance_worker)
    figures["WADO-RS instances, 4 threads (instances/s)"] = _parallel_rate(jobs, 4, instance_worker)
    return figures


def _expect(got, wanted):
    if got != wanted:
        raise RuntimeError(f"expected {wanted} results, got {got}")


def reference_of(study_uid, datasets):
    instances = {}
    for ds in datasets:
        instances.setdefault(str(ds.SeriesInstanceUID), []).append(str(ds.SOPInstanceUID))
    series_uid = next(iter(instances))
    return study_uid, series_uid, instances


# ---------------------------------------------------------------- the run


def run(args, workdir):
    processes = Processes()
    try:
        print(
            f"generating the study: 4 x {args.slices} slices of {args.size} x {args.size} ...",
            flush=True,
        )
        copies = StudyCopies(args.slices, args.size)
        servers = [start_ours(args, workdir, processes)]
        if not args.ours_only:
            servers.append(start_orthanc(workdir, processes))
        n = len(copies.datasets)
        mib = sum(len(b) for b in copies.fresh()[2]) / 2**20
        print(
            f"{n} instances, {mib:.0f} MiB; servers: {', '.join(s.name for s in servers)}",
            flush=True,
        )

        # The retrieval study: stored once on each server (not timed), with its own UIDs.
        study_uid, datasets, _ = copies.fresh()
        for server in servers:
            ingest_stow(server, datasets, args.stow_batch)
        reference = reference_of(study_uid, datasets)
        for server in servers:  # warm-up (imports, caches, connections) before the first timed pair
            measure_reads(server, reference, 2)

        rows = {}  # measurement -> server name -> list of per-pair rates
        client_cpu = {}  # measurement -> server name -> client CPU ms per item, per pair

        def record(measurement, server, value):
            rows.setdefault(measurement, {}).setdefault(server.name, []).append(value)

        ours, others = servers[0], servers[1:]
        batched = f"REST ingest, ours {args.rest_batch}/request vs Orthanc 1/request (inst/s)"
        for pair in range(1, args.pairs + 1):
            print(f"pair {pair}/{args.pairs}", flush=True)
            uid, _, files = copies.fresh()
            record(batched, ours, ingest_rest(ours, files, args.rest_batch))
            ours.drop_study(uid)
            for other in others:
                record(batched, other, ingest_rest(other, files, 1))
                other.drop_study(uid)
            uid, _, files = copies.fresh()
            for server in servers:
                cpu = time.process_time()
                record(
                    "REST ingest, 1 file/request both (inst/s)",
                    server,
                    ingest_rest(server, files, 1),
                )
                client_ms = 1000 * (time.process_time() - cpu) / len(files)
                client_cpu.setdefault("REST ingest, 1 file/request both (inst/s)", {}).setdefault(
                    server.name, []
                ).append(client_ms)
                server.drop_study(uid)
            uid, datasets, _ = copies.fresh()
            for server in servers:
                record(
                    f"STOW-RS ingest, {args.stow_batch}/request (inst/s)",
                    server,
                    ingest_stow(server, datasets, args.stow_batch),
                )
                server.drop_study(uid)
            per_server = {server.name: measure_reads(server, reference, 20) for server in servers}
            for measurement in per_server[ours.name]:
                for server in servers:
                    rate, client_ms = per_server[server.name][measurement]
                    record(measurement, server, rate)
                    client_cpu.setdefault(measurement, {}).setdefault(server.name, []).append(
                        client_ms
                    )
        report(args, servers, rows, n, client_cpu)
    finally:
        processes.stop_all()
        drop_database(args)


def report(args, servers, rows, n, client_cpu=None):
    names = [s.name for s in servers]
    lines = [
        "",
        f"study: 4 series x {args.slices} slices of {args.size} x {args.size} "
        f"(16-bit, Explicit VR LE), {n} instances; "
        f"{args.pairs} interleaved pairs (ours then Orthanc)",
        f"ours: gunicorn portal.wsgi --workers {args.workers} --threads {args.threads} "
        f"({'gthread' if args.threads > 1 else 'sync'}), DEBUG off, "
        f"{'SQLite' if args.database == 'sqlite' else 'PostgreSQL'}, reader token",
        "",
    ]
    figures = {}
    for measurement, by_server in rows.items():
        ours = by_server[names[0]]
        entry = {"ours": ours, "ours_median": statistics.median(ours)}
        lines.append(measurement)
        lines.append(
            "  ours:    "
            + "  ".join(f"{v:8.1f}" for v in ours)
            + f"   median {statistics.median(ours):8.1f}"
        )
        if len(names) > 1:
            theirs = by_server[names[1]]
            ratios = [a / b for a, b in zip(ours, theirs)]
            entry.update(
                orthanc=theirs,
                orthanc_median=statistics.median(theirs),
                ratios=ratios,
                ratio_median=statistics.median(ratios),
            )
            lines.append(
                "  Orthanc: "
                + "  ".join(f"{v:8.1f}" for v in theirs)
                + f"   median {statistics.median(theirs):8.1f}"
            )
            lines.append(
                "  ratio:   "
                + "  ".join(f"{v:8.2f}" for v in ratios)
                + f"   median {statistics.median(ratios):8.2f}"
            )
        figures[measurement] = entry
    if len(names) > 1:
        lines += [
            "",
            "| measurement | ours (median) | Orthanc (median) | ours/Orthanc per pair | median ratio |",
            "| --- | --- | --- | --- | --- |",
        ]
        for measurement, entry in figures.items():
            lines.append(
                f"| {measurement} | {entry['ours_median']:.1f} | {entry['orthanc_median']:.1f} | "
                + ", ".join(f"{r:.2f}" for r in entry["ratios"])
                + f" | {entry['ratio_median']:.2f} |"
            )
        lines.append(f"\nanchor: {names[1]}")
    if client_cpu:
        lines += [
            "",
            "client CPU per item (ms, median over pairs; the same client work for both servers):",
        ]
        for measurement, by_server in client_cpu.items():
            lines.append(
                f"  {measurement}: "
                + ", ".join(f"{name} {statistics.median(v):.2f}" for name, v in by_server.items())
            )
        figures["client_cpu_ms"] = {
            m: {k: statistics.median(v) for k, v in by.items()} for m, by in client_cpu.items()
        }
    print("\n".join(lines), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "servers": names,
                    "figures": figures,
                },
                indent=2,
            )
        )


def in_namespace(args, argv):
    """Re-run this script inside a private network namespace that has only loopback."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise SystemExit(
            "measuring Orthanc needs root and `ip netns` (Orthanc listens on 0.0.0.0); use --ours-only"
        )
    namespace = f"bench-ingest-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(
            ["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True
        )
        command = [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            str(Path(__file__).resolve()),
            "--inside",
            *argv,
        ]
        child = subprocess.Popen(command, start_new_session=True)
        try:
            return child.wait()
        except KeyboardInterrupt:
            os.killpg(child.pid, signal.SIGINT)
            return child.wait()
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.ours_only and not args.inside and not args.no_netns:
        return in_namespace(args, argv)
    os.chdir(REPOSITORY)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    # SIGTERM (e.g. from a time limit) unwinds through the finally blocks like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
