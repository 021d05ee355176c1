"""The pagination of every REST API list (its own module: DRF imports it while loading its views)."""

from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=`` defaults to PAGE_SIZE (100) and is at most :attr:`max_limit`; more rows: follow ``next``."""

    max_limit = 1000
