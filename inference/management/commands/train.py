"""``manage.py train --experiment source-study [--variant CM] [--wait] [--inline] [--set epochs=3]``."""

import time

from django.core.management.base import BaseCommand, CommandError

from inference import services
from inference.experiments import ExperimentError, parse_overrides
from inference.models import TrainingRun


class Command(BaseCommand):
    help = "Start training runs (one per variant) on the gpu queue; --inline trains here without a worker."

    def add_arguments(self, parser):
        parser.add_argument(
            "--experiment", default="source-study", help="registered name or a .json file"
        )
        parser.add_argument(
            "--variant", action="append", default=[], help="repeatable; default: every variant"
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override, e.g. epochs=3 or patch.size_px=16",
        )
        parser.add_argument(
            "--wait", action="store_true", help="wait for the runs to finish, printing progress"
        )
        parser.add_argument(
            "--inline", action="store_true", help="train in this process (no Celery worker)"
        )

    def handle(self, *args, **options):
        try:
            overrides = parse_overrides(options["set"])
            runs = services.start_training(
                None,
                options["experiment"],
                options["variant"],
                overrides,
                enqueue=not options["inline"],
            )
        except (ExperimentError, services.RunAlreadyLive) as exc:
            raise CommandError(str(exc)) from None
        for run in runs:
            self.stdout.write(f"run {run.pk}: {run.experiment_name}/{run.variant} queued")
        if options["inline"]:
            from inference.tasks import train

            for run in runs:
                train.apply(kwargs={"training_run_pk": run.pk}, task_id=run.celery_task_id)
                self._report(TrainingRun.objects.get(pk=run.pk))
        elif options["wait"]:
            self._wait([r.pk for r in runs])
        failed = TrainingRun.objects.filter(
            pk__in=[r.pk for r in runs], state__in=["failed", "cancelled"]
        ).exists()
        if failed and (options["wait"] or options["inline"]):
            raise CommandError("some runs did not succeed")

    def _wait(self, pks):
        last = {}
        while True:
            runs = list(TrainingRun.objects.filter(pk__in=pks).order_by("pk"))
            for run in runs:
                p = run.progress
                line = (
                    f"run {run.pk} {run.variant}: {run.state} {p.get('stage')} "
                    f"fold {p.get('fold')} epoch {p.get('epoch')}/{p.get('epochs')} loss {p.get('loss')}"
                )
                if last.get(run.pk) != line:
                    self.stdout.write(line)
                    last[run.pk] = line
            if all(r.finished for r in runs):
                for run in runs:
                    self._report(run)
                return
            time.sleep(2)

    def _report(self, run):
        version = getattr(run, "model_version", None)
        auc = version.metrics.get("oof_auc") if version else None
        self.stdout.write(
            f"run {run.pk} {run.variant}: {run.state}"
            + (f"; {version} out-of-fold AUC {auc}" if version else "")
            + (f"; {run.error}" if run.error else "")
        )
