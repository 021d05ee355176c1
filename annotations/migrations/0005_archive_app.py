"""The annotations' foreign keys point at the archive app's models (same tables: state only)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0004_crossover_washout"),
        ("archive", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lesion",
                    name="study",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lesions",
                        to="archive.study",
                    ),
                ),
                migrations.AlterField(
                    model_name="readerstudy",
                    name="studies",
                    field=models.ManyToManyField(
                        related_name="reader_studies",
                        through="annotations.ReaderStudyCase",
                        to="archive.study",
                    ),
                ),
                migrations.AlterField(
                    model_name="readerstudycase",
                    name="study",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reader_study_cases",
                        to="archive.study",
                    ),
                ),
                migrations.AlterField(
                    model_name="roi",
                    name="series",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rois",
                        to="archive.series",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
