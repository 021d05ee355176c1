"""API tokens move from DRF's plain-text table to django-rest-knox's digests.

Each existing DRF token (``authtoken_token``, left by ``rest_framework.authtoken``) becomes a
knox token with the same key, so scripts keep working: the row holds the key's SHA-512 digest
(what knox compares, ``knox.crypto.hash_token``) and its first 15 characters (knox's lookup
prefix, ``CONSTANTS.TOKEN_KEY_LENGTH``). It expires ``API_TOKEN_EXPIRES_DAYS`` after this
migration (never with 0). The plain keys are then deleted from the old table.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

DRF_TABLE = "authtoken_token"


def hash_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return  # a database created after the move: there never were plain tokens
    AuthToken = apps.get_model("knox", "AuthToken")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name('key')}, user_id, created FROM {DRF_TABLE}"
        )
        rows = cursor.fetchall()
    days = getattr(settings, "API_TOKEN_EXPIRES_DAYS", 0)
    expiry = timezone.now() + timedelta(days=days) if days else None
    for key, user_id, created in rows:
        digest = hashlib.sha512(key.encode()).hexdigest()
        if not AuthToken.objects.filter(digest=digest).exists():
            AuthToken(digest=digest, token_key=key[:15], user_id=user_id, expiry=expiry).save()
            AuthToken.objects.filter(digest=digest).update(created=created)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DRF_TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_study_created_by"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop, elidable=True)]
