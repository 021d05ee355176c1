"""Time to the first image of every phase on the case page, in headless Chromium.

Opens one case (the browser tests' phantom: 4 phases x 64 slices of 512 x 512, 16-bit,
uncompressed) ``--runs`` times and prints every run and the median. The figure is the
page's own ``data-time-to-first-images-ms``: milliseconds from navigation start until
every phase has drawn its first image (``performance.now()`` at the last phase's first
IMAGE_RENDERED). The page's ``performance.mark``s split it: entry module started,
Cornerstone ready, first image per phase.

Set-up, as in production:
- ``gunicorn portal.wsgi --workers 2 --threads 4`` (gthread) on 127.0.0.1, ``DEBUG=0``,
  a random ``SECRET_KEY``, a fresh SQLite database and media folder in a temp folder,
  migrations applied;
- static files collected by ``collectstatic`` into the temp folder (whitenoise's
  ``CompressedStaticFilesStorage``: a ``.br`` (with the Brotli package) and a ``.gz``
  beside every file) and served by whitenoise, which answers with the brotli file when
  the browser asks for it (Chromium does);
- the study ingested through ``archive.ingest.ingest_upload`` by a coordinator, in a
  reader study of one reader, who logs in once through the login form;
- every run in a fresh browser context (empty cache, nothing preloaded), 1500 x 950.

``--load N`` keeps N busy Python processes running during the runs (the "while other
work runs" figure on a 2-core machine). The bundle sizes of ``portal/static/portal/build``
(each ``.js``: raw, gzip -9 and brotli -q 11, what whitenoise writes) are printed first,
with what the case page loads before its first image.

Run from the repository root, after ``make frontend``::

    .venv/bin/python benchmarks/viewer.py                 # 5 runs, quiet
    .venv/bin/python benchmarks/viewer.py --load 2        # 5 runs beside 2 busy processes
    .venv/bin/python benchmarks/viewer.py --sizes-only    # bundle sizes, no browser
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from archive.vocabulary import PHASES  # noqa: E402
from benchmarks.processes import Processes, start_gunicorn  # noqa: E402

BUILD = REPOSITORY / "portal" / "static" / "portal" / "build"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads (default 5)")
    parser.add_argument("--slices", type=int, default=64, help="slices per phase (default 64)")
    parser.add_argument("--size", type=int, default=512, help="Rows = Columns (default 512)")
    parser.add_argument(
        "--load", type=int, default=0, help="busy processes running beside the runs (default 0)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes (default 2)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per worker (default 4)"
    )
    parser.add_argument("--sizes-only", action="store_true", help="print the bundle sizes and stop")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this JSON file"
    )
    return parser.parse_args(argv)


# ---------------------------------------------------------------- bundle sizes


def compressed_sizes(data: bytes) -> tuple[int, int | None]:
    """(gzip -9, brotli -q 11) sizes of ``data``, as whitenoise compresses; brotli None without the package."""
    gzipped = len(gzip.compress(data, compresslevel=9, mtime=0))
    try:
        import brotli
    except ImportError:
        return gzipped, None
    return gzipped, len(brotli.compress(data, quality=11))


def bundle_sizes(build: Path = BUILD) -> list[dict]:
    """One row per JavaScript file of the build (entry points, chunks, the decode worker)."""
    rows = []
    for path in sorted(build.rglob("*.js")):
        data = path.read_bytes()
        gzipped, brotli_size = compressed_sizes(data)
        rows.append(
            {
                "file": str(path.relative_to(build)),
                "raw": len(data),
                "gzip": gzipped,
                "brotli": brotli_size,
            }
        )
    return rows


def kib(n):
    return "–" if n is None else f"{n / 1024:,.0f} KiB"


def print_sizes(rows):
    print(f"JavaScript in {BUILD.relative_to(REPOSITORY)} (raw / gzip -9 / brotli -q 11):")
    for row in rows:
        print(
            f"  {row['file']:<48} {kib(row['raw']):>10} {kib(row['gzip']):>10} {kib(row['brotli']):>10}"
        )
    total = {key: sum(r[key] or 0 for r in rows) for key in ("raw", "gzip", "brotli")}
    print(
        f"  {'all':<48} {kib(total['raw']):>10} {kib(total['gzip']):>10} {kib(total['brotli']):>10}"
    )


# ---------------------------------------------------------------- server


def start_portal(args, workdir, processes):
    """Fresh database, collected static files, the phantom case; gunicorn.

    Returns (base URL, case URL, reader login).
    """
    var = workdir / "var"
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        DEID_SECRET=secrets.token_urlsafe(40),
        VAR_DIR=str(var),
        MEDIA_ROOT=str(var / "media"),
        STATIC_ROOT=str(var / "staticfiles"),
        DATABASE_URL=f"sqlite:///{var / 'portal.sqlite3'}",
        DJANGO_SETTINGS_MODULE="portal.settings",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("CELERY_BROKER_URL", None)
    (var / "media").mkdir(parents=True)
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"], cwd=REPOSITORY, env=env, check=True
    )
    subprocess.run(
        [*manage, "collectstatic", "--noinput", "-v", "0"], cwd=REPOSITORY, env=env, check=True
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
                "STATIC_ROOT",
                "DATABASE_URL",
                "DJANGO_SETTINGS_MODULE",
            )
        }
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.contrib.auth.models import Group, User

    from annotations.models import ReaderStudy, ReaderStudyCase
    from archive.ingest import ingest_upload
    from archive.models import Study
    from portal.roles import COORDINATOR, READER, ensure_roles
    from tests.browser_tests.phantom import phantom_study_files

    ensure_roles()
    coordinator = User.objects.create_user("bench-coordinator", password=secrets.token_urlsafe(16))
    coordinator.groups.add(Group.objects.get(name=COORDINATOR))
    password = secrets.token_urlsafe(16)
    reader = User.objects.create_user("bench-reader", password=password)
    reader.groups.add(Group.objects.get(name=READER))
    study_uid, files = phantom_study_files(args.slices, args.size)
    report = ingest_upload(list(files), coordinator)
    if report.status != "stored":
        raise RuntimeError(f"the phantom study was not stored: {report.as_dict()}")
    study = Study.objects.get(study_instance_uid=study_uid)
    reader_study = ReaderStudy.objects.create(
        name="Viewer benchmark", case_order=ReaderStudy.CaseOrder.FIXED, created_by=coordinator
    )
    reader_study.readers.add(reader)
    ReaderStudyCase.objects.create(reader_study=reader_study, study=study, position=1)

    base, _ = start_gunicorn(
        processes, workdir, env, args.workers, args.threads, "/accounts/login/", REPOSITORY
    )
    return base, f"{base}/reading/{reader_study.pk}/{study_uid}/", (reader.username, password)


def start_load(n, processes, workdir):
    for i in range(n):
        processes.start([sys.executable, "-c", "while True: pass"], workdir / f"load-{i}.log")


# ---------------------------------------------------------------- browser


MARKS_JS = """() => {
    const root = document.getElementById('case');
    const marks = Object.fromEntries(
        performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)])
    );
    const scripts = performance.getEntriesByType('resource').filter(
        (r) => r.name.includes('/static/') && r.name.endsWith('.js')
    );
    return {
        firstImages: Number(root.dataset.timeToFirstImagesMs),
        rendering: root.dataset.rendering,
        marks,
        scripts: scripts.map((r) => ({
            name: r.name.split('/static/')[1],
            transfer: r.transferSize,
            decoded: r.decodedBodySize,
            end: Math.round(r.responseEnd),
        })),
    };
}"""


def measure(args, base, case_url, login):
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=username]", login[0])
        page.fill("input[name=password]", login[1])
        page.click("form.login button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        cookies = context.cookies()
        context.close()
        for run in range(args.runs):
            context = browser.new_context(viewport={"width": 1500, "height": 950})
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(case_url)
            page.wait_for_function(
                "() => document.getElementById('case').dataset.timeToFirstImagesMs", timeout=120_000
            )
            result = page.evaluate(MARKS_JS)
            context.close()
            runs.append(result)
            marks = result["marks"]
            print(
                f"  run {run + 1}: {result['firstImages']} ms ({result['rendering']} rendering); "
                f"entry module {marks.get('case:script', '–')} ms, "
                f"Cornerstone ready {marks.get('case:cornerstone-ready', '–')} ms, "
                f"JS {sum(s['transfer'] for s in result['scripts']) / 1024:,.0f} KiB transferred "
                f"({sum(s['decoded'] for s in result['scripts']) / 1024:,.0f} KiB decoded)",
                flush=True,
            )
        browser.close()
    return runs


def main(argv=None):
    args = parse_args(argv)
    sizes = bundle_sizes()
    if not sizes:
        sys.exit(f"no bundle in {BUILD}: run `make frontend` first")
    print_sizes(sizes)
    if args.sizes_only:
        return
    processes = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        base, case_url, login = start_portal(args, workdir, processes)
        start_load(args.load, processes, workdir)
        print(
            f"case of {len(PHASES)} x {args.slices} slices of {args.size}², gunicorn {args.workers}x{args.threads}, "
            f"{args.load} busy process(es), {os.cpu_count()} CPU(s):",
            flush=True,
        )
        runs = measure(args, base, case_url, login)
    finally:
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    figures = [r["firstImages"] for r in runs]
    print(
        f"time to the first image of every phase: median {statistics.median(figures):.0f} ms "
        f"(min {min(figures)}, max {max(figures)}, {len(figures)} runs, {args.load} busy process(es))"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"sizes": sizes, "runs": runs, "load": args.load}, indent=1)
        )


if __name__ == "__main__":
    main()
