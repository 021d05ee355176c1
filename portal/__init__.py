"""The portal: Django project, accounts and roles, and the imaging archive."""

from .celery import app as celery_app

__all__ = ("celery_app",)
