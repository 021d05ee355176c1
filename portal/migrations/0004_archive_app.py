"""The archive's models left the portal app for the archive app, with their tables (see archive 0001).

A database made before the move keeps every row: no table is touched. The content types
of the moved models are renamed to the archive app, so every permission granted on them
and every admin log entry stays attached (as ``archive.<codename>``).
"""

from django.db import migrations

ARCHIVE_MODELS = ("patient", "study", "series", "upload", "instance")


def move_content_types(apps, schema_editor, source="portal", target="archive"):
    """The content types (and with them the permissions and admin log) of the moved models follow them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    ContentType.objects.using(db).filter(app_label=source, model__in=ARCHIVE_MODELS).update(
        app_label=target
    )


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, source="archive", target="portal")


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0005_archive_app"),
        ("archive", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("portal", "0003_hash_drf_api_tokens"),
    ]

    operations = [
        migrations.RunPython(move_content_types, move_content_types_back),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="study",
                    name="patient",
                ),
                migrations.RemoveField(
                    model_name="series",
                    name="phase_set_by",
                ),
                migrations.RemoveField(
                    model_name="series",
                    name="study",
                ),
                migrations.RemoveField(
                    model_name="study",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="upload",
                    name="user",
                ),
                migrations.DeleteModel(
                    name="Instance",
                ),
                migrations.DeleteModel(
                    name="Patient",
                ),
                migrations.DeleteModel(
                    name="Series",
                ),
                migrations.DeleteModel(
                    name="Study",
                ),
                migrations.DeleteModel(
                    name="Upload",
                ),
            ],
            database_operations=[],
        ),
    ]
