"""One queued or running training run per experiment and variant; the per-lesion scoring debounce."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def cancel_extra_live_runs(apps, schema_editor):
    """Before the constraint: of several queued/running runs of one experiment and variant, keep the
    running one (else the oldest) and cancel the other queued ones, saying why in their log."""
    TrainingRun = apps.get_model("inference", "TrainingRun")
    live = TrainingRun.objects.filter(state__in=["queued", "running"]).order_by(
        "experiment_name", "variant", "-state", "id"
    )
    kept = set()
    for run in live:
        key = (run.experiment_name, run.variant)
        if key not in kept:
            kept.add(key)
            continue
        now = timezone.now()
        run.state, run.finished_at = ("cancelled" if run.state == "queued" else "failed"), now
        run.log += f"{now:%Y-%m-%d %H:%M:%S} {run.state}: another run of {key[0]}/{key[1]} was queued or running (one at a time)\n"
        run.save(update_fields=["state", "finished_at", "log"])


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0002_audit_append_only_and_more_actions"),
        ("inference", "0002_model_family_and_one_active_model_per_experiment_variant"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingScoring",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("requested_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RunPython(cancel_extra_live_runs, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="trainingrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state__in", ["queued", "running"])),
                fields=("experiment_name", "variant"),
                name="one_live_run_per_experiment_variant",
            ),
        ),
        migrations.AddField(
            model_name="pendingscoring",
            name="lesion",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="annotations.lesion",
            ),
        ),
    ]
