"""Roles as Django groups, and the one place that says what each role may do.

Capabilities are permissions on ``portal.Capability`` (a table-less model), so a site can
also grant a single capability to a single user through the Django admin. Code asks
``can(user, ENTER_PATHOLOGY)`` (or decorates a view with ``permission_required(
permission(UPLOAD_STUDIES))``); no other module spells a permission string.
Every app may import this module (and only this one of the portal shell).
"""

from django.contrib.auth.models import Group, Permission

READER = "reader"
COORDINATOR = "coordinator"
ADMIN = "admin"

# The capabilities, by name (the codenames of portal.Capability's permissions).
UPLOAD_STUDIES = "upload_studies"
ANNOTATE_LESIONS = "annotate_lesions"
RECORD_READER_CALLS = "record_reader_calls"
VIEW_ALL_STUDIES = "view_all_studies"
MANAGE_STUDIES = "manage_studies"
SET_SERIES_PHASE = "set_series_phase"
MANAGE_READER_STUDIES = "manage_reader_studies"
ENTER_PATHOLOGY = "enter_pathology"
UNBLIND_READER_STUDIES = "unblind_reader_studies"
VIEW_COMPARISONS = "view_comparisons"
START_TRAINING = "start_training"
MANAGE_MODELS = "manage_models"

CAPABILITIES = {
    "upload_studies": "Upload DICOM studies",
    "annotate_lesions": "Draw lesions and ROIs on assigned cases",
    "record_reader_calls": "Record own blinded reader calls",
    "view_all_studies": "See every study in the archive",
    "manage_studies": "Add instances or series to any study of the archive",
    "set_series_phase": "Override the contrast phase of a series",
    "manage_reader_studies": "Create and manage reader studies",
    "enter_pathology": "Enter pathology (ground truth)",
    "unblind_reader_studies": "Unblind a reader study",
    "view_comparisons": "See reader-versus-model comparisons",
    "start_training": "Start CNN training runs",
    "manage_models": "Activate and retire model versions",
}

_READER = ["upload_studies", "annotate_lesions", "record_reader_calls"]
_COORDINATOR = _READER + [
    "view_all_studies",
    "manage_studies",
    "set_series_phase",
    "manage_reader_studies",
    "enter_pathology",
    "unblind_reader_studies",
    "view_comparisons",
]
ROLE_CAPABILITIES = {
    READER: _READER,
    COORDINATOR: _COORDINATOR,
    ADMIN: _COORDINATOR + ["start_training", "manage_models"],
}


def permission(capability):
    """The permission string of ``capability`` (for ``permission_required`` and DRF)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    return f"portal.{capability}"


def can(user, capability):
    """Whether ``user`` has ``capability`` (through a role, a single grant, or as superuser)."""
    return user is not None and user.has_perm(permission(capability))


def ensure_roles(**kwargs):
    """Create the role groups and give each its capabilities (idempotent; runs after migrate)."""
    permissions = {
        p.codename: p
        for p in Permission.objects.filter(
            content_type__app_label="portal", codename__in=CAPABILITIES
        )
    }
    if len(permissions) < len(CAPABILITIES):
        return  # portal's permissions are not created yet; a later post_migrate call finishes
    for role, codenames in ROLE_CAPABILITIES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([permissions[c] for c in codenames])


def user_roles(user):
    """The role names of ``user`` (superusers count as admin)."""
    if not user.is_authenticated:
        return set()
    roles = set(user.groups.filter(name__in=ROLE_CAPABILITIES).values_list("name", flat=True))
    if user.is_superuser:
        roles.add(ADMIN)
    return roles


def roles_context(request):
    """Template context: ``roles`` (set of names) and ``can`` (capability -> bool)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"roles": set(), "can": {}}
    return {
        "roles": user_roles(user),
        "can": {c: can(user, c) for c in CAPABILITIES},
    }
