"""The archive's models, moved from the portal app with their tables (state only: no table changes).

Every model keeps its ``db_table`` (``portal_study`` ...); ``portal 0004`` moves the content types,
so the rows, their permissions and the admin's history stay as they were."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("portal", "0003_hash_drf_api_tokens"),  # created these tables
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Patient",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "patient_id",
                            models.CharField(
                                max_length=64, unique=True, verbose_name="pseudonymous PatientID"
                            ),
                        ),
                        (
                            "sex",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("F", "female"),
                                    ("M", "male"),
                                    ("O", "other"),
                                    ("", "unknown"),
                                ],
                                default="",
                                max_length=1,
                            ),
                        ),
                        ("age_years", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "portal_patient",
                    },
                ),
                migrations.CreateModel(
                    name="Study",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("study_instance_uid", models.CharField(max_length=64, unique=True)),
                        ("study_date", models.DateField(blank=True, null=True)),
                        ("study_time", models.CharField(blank=True, max_length=16)),
                        ("study_id", models.CharField(blank=True, max_length=16)),
                        ("description", models.CharField(blank=True, max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                help_text="who uploaded the study's first instances: sees it by upload and may add to it",
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "patient",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="studies",
                                to="archive.patient",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "studies",
                        "db_table": "portal_study",
                    },
                ),
                migrations.CreateModel(
                    name="Series",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("series_instance_uid", models.CharField(max_length=64, unique=True)),
                        ("modality", models.CharField(max_length=16)),
                        ("series_number", models.IntegerField(blank=True, null=True)),
                        ("description", models.CharField(blank=True, max_length=64)),
                        ("frame_of_reference_uid", models.CharField(blank=True, max_length=64)),
                        ("acquisition_time", models.CharField(blank=True, max_length=16)),
                        ("contrast_bolus_agent", models.CharField(blank=True, max_length=64)),
                        ("contrast_bolus_start_time", models.CharField(blank=True, max_length=16)),
                        (
                            "phase",
                            models.CharField(
                                choices=[
                                    ("NC", "unenhanced"),
                                    ("CM", "corticomedullary"),
                                    ("NG", "nephrographic"),
                                    ("EX", "excretory"),
                                    ("unknown", "unknown"),
                                ],
                                default="unknown",
                                max_length=8,
                            ),
                        ),
                        (
                            "phase_source",
                            models.CharField(
                                choices=[
                                    ("automatic", "classified from the DICOM attributes"),
                                    ("manual", "set by a person"),
                                ],
                                default="automatic",
                                max_length=10,
                            ),
                        ),
                        ("phase_reason", models.CharField(blank=True, max_length=200)),
                        (
                            "automatic_phase",
                            models.CharField(
                                choices=[
                                    ("NC", "unenhanced"),
                                    ("CM", "corticomedullary"),
                                    ("NG", "nephrographic"),
                                    ("EX", "excretory"),
                                    ("unknown", "unknown"),
                                ],
                                default="unknown",
                                max_length=8,
                            ),
                        ),
                        ("phase_set_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "phase_set_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "study",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="series",
                                to="archive.study",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "series",
                        "db_table": "portal_series",
                        "ordering": ["series_number", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="Upload",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "channel",
                            models.CharField(
                                choices=[
                                    ("browser", "browser"),
                                    ("rest", "REST API"),
                                    ("stow", "DICOMweb STOW-RS"),
                                    ("command", "command line"),
                                ],
                                max_length=8,
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("stored", "stored"),
                                    ("duplicate", "nothing new (all duplicates)"),
                                    ("rejected", "rejected, nothing stored"),
                                ],
                                max_length=10,
                            ),
                        ),
                        ("deidentify", models.BooleanField(default=False)),
                        ("n_stored", models.PositiveIntegerField(default=0)),
                        ("n_duplicate", models.PositiveIntegerField(default=0)),
                        ("n_rejected", models.PositiveIntegerField(default=0)),
                        ("report", models.JSONField(default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="uploads",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "portal_upload",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="Instance",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("sop_instance_uid", models.CharField(max_length=64, unique=True)),
                        ("sop_class_uid", models.CharField(max_length=64)),
                        ("instance_number", models.IntegerField(blank=True, null=True)),
                        ("image_position_patient", models.JSONField(blank=True, null=True)),
                        ("image_orientation_patient", models.JSONField(blank=True, null=True)),
                        (
                            "slice_position",
                            models.FloatField(
                                blank=True,
                                help_text="IPP projected on the slice normal (mm)",
                                null=True,
                            ),
                        ),
                        ("pixel_spacing", models.JSONField(blank=True, null=True)),
                        ("slice_thickness", models.FloatField(blank=True, null=True)),
                        ("rows", models.PositiveIntegerField()),
                        ("columns", models.PositiveIntegerField()),
                        ("number_of_frames", models.PositiveIntegerField(default=1)),
                        ("rescale_intercept", models.FloatField(default=0.0)),
                        ("rescale_slope", models.FloatField(default=1.0)),
                        ("window_center", models.FloatField(blank=True, null=True)),
                        ("window_width", models.FloatField(blank=True, null=True)),
                        ("transfer_syntax_uid", models.CharField(max_length=64)),
                        ("acquisition_time", models.CharField(blank=True, max_length=16)),
                        ("sha256", models.CharField(db_index=True, max_length=64)),
                        ("file", models.FileField(max_length=200, upload_to="")),
                        ("size_bytes", models.PositiveBigIntegerField()),
                        (
                            "metadata",
                            models.JSONField(
                                help_text="DICOM JSON (PS3.18 F.2) without the pixel data, for WADO-RS metadata"
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "series",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="instances",
                                to="archive.series",
                            ),
                        ),
                        (
                            "upload",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="instances",
                                to="archive.upload",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "portal_instance",
                        "ordering": ["slice_position", "instance_number", "id"],
                        "indexes": [
                            models.Index(
                                fields=["series", "slice_position"],
                                name="portal_inst_series__1a3327_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
