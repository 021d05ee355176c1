"""More audited actions, events without an object, and the append-only guard (annotations.audit_guard)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from annotations import audit_guard


def install_guard(apps, schema_editor):
    audit_guard.install(schema_editor.connection)


def remove_guard(apps, schema_editor):
    audit_guard.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("create", "create"),
                    ("update", "update"),
                    ("delete", "delete"),
                    ("unblind", "unblind"),
                    ("close", "close"),
                    ("reopen", "reopen"),
                    ("activate", "activate model"),
                    ("start", "start training"),
                    ("cancel", "cancel training"),
                    ("login", "login"),
                    ("login_failed", "failed login"),
                    ("logout", "logout"),
                    ("export", "export (table, plot, SR)"),
                    ("download", "download (DICOM)"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="object_id",
            field=models.PositiveBigIntegerField(
                blank=True, help_text="empty for a failed login", null=True
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="user",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["object_type", "object_id"], name="auditevent_object_idx"),
        ),
        migrations.RunPython(install_guard, remove_guard),
    ]
