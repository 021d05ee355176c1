"""Roles as Django groups, and the one place that says what each role may do.

Capabilities are permissions on ``portal.Capability`` (a table-less model), so a site can
also grant a single capability to a single user through the Django admin. Code asks
``can(user, ENTER_PATHOLOGY)``, an API view refuses with ``require(user, ENTER_PATHOLOGY)``,
and a page is decorated with ``permission_required(permission(UPLOAD_STUDIES))``; no other
module spells a permission string. Rules that also depend on the object (which study, which
reader study) live in ``annotations/access.py`` and ``inference/access.py``.
Every app may import this module (and only this one of the portal shell).
"""

from django.contrib.auth.models import Group, Permission
from rest_framework.exceptions import PermissionDenied

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
    UPLOAD_STUDIES: "Upload DICOM studies",
    ANNOTATE_LESIONS: "Draw lesions and ROIs on assigned cases",
    RECORD_READER_CALLS: "Record own blinded reader calls",
    VIEW_ALL_STUDIES: "See every study in the archive",
    MANAGE_STUDIES: "Add instances or series to any study of the archive",
    SET_SERIES_PHASE: "Override the contrast phase of a series",
    MANAGE_READER_STUDIES: "Create and manage reader studies",
    ENTER_PATHOLOGY: "Enter pathology (ground truth)",
    UNBLIND_READER_STUDIES: "Unblind a reader study",
    VIEW_COMPARISONS: "See reader-versus-model comparisons",
    START_TRAINING: "Start CNN training runs",
    MANAGE_MODELS: "Activate and retire model versions",
}

_READER = [UPLOAD_STUDIES, ANNOTATE_LESIONS, RECORD_READER_CALLS]
_COORDINATOR = _READER + [
    VIEW_ALL_STUDIES,
    MANAGE_STUDIES,
    SET_SERIES_PHASE,
    MANAGE_READER_STUDIES,
    ENTER_PATHOLOGY,
    UNBLIND_READER_STUDIES,
    VIEW_COMPARISONS,
]
ROLE_CAPABILITIES = {
    READER: _READER,
    COORDINATOR: _COORDINATOR,
    ADMIN: _COORDINATOR + [START_TRAINING, MANAGE_MODELS],
}


def permission(capability):
    """The permission string of ``capability`` (for ``permission_required`` and DRF)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    return f"portal.{capability}"


def can(user, capability):
    """Whether ``user`` has ``capability`` (through a role, a single grant, or as superuser)."""
    return user is not None and user.has_perm(permission(capability))


def require(user, capability):
    """Refuse an API request (403 naming the capability) unless ``user`` has ``capability``.

    The one way an API view checks a capability that does not depend on the object.
    """
    if not can(user, capability):
        raise PermissionDenied(f"your role may not {capability.replace('_', ' ')}")


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
