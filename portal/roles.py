"""Roles as Django groups, and the one place that says what each role may do.

Capabilities are permissions on ``portal.Capability`` (a table-less model), so a view
asks ``user.has_perm("portal.enter_pathology")`` and a site can also grant a single
capability to a single user through the Django admin.
"""

from django.contrib.auth.models import Group, Permission

READER = "reader"
COORDINATOR = "coordinator"
ADMIN = "admin"

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
        "can": {c: user.has_perm(f"portal.{c}") for c in CAPABILITIES},
    }
