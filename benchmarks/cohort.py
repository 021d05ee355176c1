"""Throughput of the synthetic cohort generator (:mod:`cohort`).

Per stage, for ``--patients`` studies of ``--size``^2 x ``--slices`` x 4 phases:

- latents: :func:`sample_cohort` (patients/s; no pixels),
- render: :func:`render_volumes` (slices/s, all four phases counted),
- write: DICOM files per transfer syntax (slices/s, MB per study on disk),
- import (``--import``): what ``make_cohort --import`` does, into an empty SQLite portal.

Wall-clock and process CPU seconds are both printed: on a shared machine the
CPU figure is the steadier one. Run from the repository root::

    .venv/bin/python benchmarks/cohort.py                       # 3 studies, 512^2 x 64
    .venv/bin/python benchmarks/cohort.py --quick               # 2 studies, 256^2 x 24
    .venv/bin/python benchmarks/cohort.py --syntaxes explicit-le rle jpeg-ls
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.vocabulary import PHASES  # noqa: E402
from cohort.anatomy import render_volumes  # noqa: E402
from cohort.files import write_study  # noqa: E402
from cohort.latents import sample_cohort  # noqa: E402
from cohort.spec import CohortSpec  # noqa: E402


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def import_hook(out_dir: Path, spec: CohortSpec) -> float:
    """Seconds to import a freshly written copy of the cohort into an empty portal (SQLite in a temp folder).

    The import is ``cohort.importer.import_cohort``, what ``make_cohort --import`` runs:
    every study through the ingest path, lesions with reference ROIs and pathology.
    """
    var = Path(tempfile.mkdtemp(prefix="cohort-bench-var-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="1", VAR_DIR=str(var), DATABASE_URL=""
    )
    import django
    from django.core.management import call_command

    django.setup()
    from django.contrib.auth import get_user_model

    from cohort.files import write_cohort
    from cohort.importer import import_cohort

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password=None)
    files = write_cohort(spec, out_dir / "import-copy")
    with Timer() as t:
        import_cohort(files, user, "benchmark")
    shutil.rmtree(var, ignore_errors=True)
    return t.wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--syntaxes", nargs="+", default=["explicit-le", "rle"])
    parser.add_argument("--quick", action="store_true", help="2 studies of 256^2 x 24")
    parser.add_argument(
        "--import", dest="do_import", action="store_true", help="also time the import hook"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.size, args.slices = 2, 256, 24
    spec = CohortSpec(patients=args.patients, seed=args.seed, size=args.size, slices=args.slices)
    slices = args.patients * args.slices * len(PHASES)
    print(
        f"cohort benchmark: {args.patients} studies of {args.size}^2 x {args.slices} slices x 4 phases "
        f"({slices} slices), seed {args.seed}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )

    with Timer() as t:
        cases = sample_cohort(CohortSpec(patients=1000, seed=args.seed))
    print(f"latents   {1000 / t.wall:8.0f} patients/s wall  {1000 / t.cpu:8.0f} patients/s CPU")

    cases = sample_cohort(spec)
    rendered = []
    with Timer() as t:
        for case in cases:
            rendered.append(render_volumes(case, spec))
    print(
        f"render    {slices / t.wall:8.1f} slices/s wall  {slices / t.cpu:8.1f} slices/s CPU  "
        f"({t.wall / args.patients:.2f} s wall per study)"
    )

    for syntax in args.syntaxes:
        syntax_spec = CohortSpec(
            patients=args.patients,
            seed=args.seed,
            size=args.size,
            slices=args.slices,
            transfer_syntax=syntax,
        )
        out = Path(tempfile.mkdtemp(prefix=f"cohort-bench-{syntax}-"))
        try:
            with Timer() as t:
                for study in rendered:
                    write_study(type(study)(study.case, syntax_spec, study.hu), out)
            megabytes = folder_bytes(out) / 1e6 / args.patients
            print(
                f"write {syntax:<12} {slices / t.wall:8.1f} slices/s wall  {slices / t.cpu:8.1f} slices/s CPU  "
                f"{megabytes:7.1f} MB/study  ~{megabytes * 160 / 1000:.1f} GB per 160 patients"
            )
            if args.do_import and syntax == args.syntaxes[0]:
                seconds = import_hook(out, syntax_spec)
                print(
                    f"import    {slices / seconds:8.1f} slices/s wall (ingest + lesions + pathology)"
                )
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
