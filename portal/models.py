"""The portal shell's one model: the role capabilities, as permissions of a table-less model."""

from django.db import models

from .roles import CAPABILITIES


class Capability(models.Model):
    """Holds the role capabilities as permissions; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = list(CAPABILITIES.items())
