"""Every endpoint x role: who may list, read, create and change (the permission matrix).

Roles: ``reader`` is assigned to reader study A (study A, lesion L1); ``other_reader``
only to reader study B; coordinator and admin manage everything; anonymous is refused.
"""

import pytest

from annotations.models import ROI, ReaderCall, ReaderStudy
from tests.factories.annotations import roi_values

ROLES = ["reader", "other_reader", "coordinator", "admin", "anonymous"]


def _rs(ctx):
    return ctx["reader_study_a"].pk


def _lesion(ctx):
    return ctx["lesion_a"].pk


def _roi(ctx):
    return ctx["lesion_a"].rois.first().pk


def _with_heat_map(ctx, get, url):
    from tests.factories.inference import make_heat_maps

    make_heat_maps(ctx["lesion_a"], ("CM",))
    return get(url)


def _with_aided_heat_map(ctx, get, url, design=ReaderStudy.Design.SEQUENTIAL, locked=True):
    """Heat maps of the model frozen for reader study A (of ``design``), reader1's unaided call locked or not."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from inference.aided import freeze_model_version
    from tests.factories.inference import make_heat_maps

    reader_study = ctx["reader_study_a"]
    reader_study.design = design
    reader_study.save(update_fields=["design"])
    version, _ = make_heat_maps(ctx["lesion_a"], ("CM",))
    freeze_model_version(reader_study, version.pk)
    if locked:
        ReaderCall.objects.create(
            reader_study=reader_study,
            lesion=ctx["lesion_a"],
            reader=get_user_model().objects.get(username="reader1"),
            malignant=False,
            probability=30,
            locked_at=timezone.now(),
        )
    return get(f"{url}?reader_study={reader_study.pk}")


ENDPOINTS = {
    "list reader studies": lambda c, x: c.get("/api/v1/reader-studies/"),
    "read reader study": lambda c, x: c.get(f"/api/v1/reader-studies/{_rs(x)}/"),
    "create reader study": lambda c, x: c.post(
        "/api/v1/reader-studies/",
        {"name": "new", "studies": [x["study_a"].study_instance_uid], "readers": ["reader1"]},
        format="json",
    ),
    "change reader study": lambda c, x: c.patch(
        f"/api/v1/reader-studies/{_rs(x)}/", {"instructions": "new"}, format="json"
    ),
    "delete reader study": lambda c, x: c.delete(f"/api/v1/reader-studies/{_rs(x)}/"),
    "unblind reader study": lambda c, x: c.post(f"/api/v1/reader-studies/{_rs(x)}/unblind/"),
    "close reader study": lambda c, x: c.post(f"/api/v1/reader-studies/{_rs(x)}/close/"),
    "worklist": lambda c, x: c.get(f"/api/v1/reader-studies/{_rs(x)}/worklist/"),
    "export csv": lambda c, x: c.get(f"/api/v1/reader-studies/{_rs(x)}/export.csv"),
    "list lesions": lambda c, x: c.get(
        "/api/v1/lesions/", {"study": x["study_a"].study_instance_uid}
    ),
    "read lesion": lambda c, x: c.get(f"/api/v1/lesions/{_lesion(x)}/"),
    "create lesion": lambda c, x: c.post(
        "/api/v1/lesions/",
        {
            "study": x["study_a"].study_instance_uid,
            "label": "L2",
            "side": "right",
            "long_axis_mm": 12.0,
        },
        format="json",
    ),
    "change lesion": lambda c, x: c.patch(
        f"/api/v1/lesions/{_lesion(x)}/", {"location": "upper pole"}, format="json"
    ),
    "delete lesion": lambda c, x: c.delete(f"/api/v1/lesions/{_lesion(x)}/"),
    "list rois": lambda c, x: c.get("/api/v1/rois/", {"lesion": _lesion(x)}),
    "create roi": lambda c, x: c.post(
        "/api/v1/rois/", {"lesion": _lesion(x), **roi_values(x["study_a"], "EX")}, format="json"
    ),
    "change roi": lambda c, x: c.patch(
        f"/api/v1/rois/{_roi(x)}/", {"stats": {"mean": 1.0}}, format="json"
    ),
    "delete roi": lambda c, x: c.delete(f"/api/v1/rois/{_roi(x)}/"),
    "read pathology": lambda c, x: c.get(f"/api/v1/lesions/{_lesion(x)}/pathology/"),
    "write pathology": lambda c, x: c.put(
        f"/api/v1/lesions/{_lesion(x)}/pathology/",
        {"subtype": "papillary", "source": "biopsy"},
        format="json",
    ),
    "list calls": lambda c, x: c.get("/api/v1/calls/", {"reader_study": _rs(x)}),
    "create call": lambda c, x: c.post(
        "/api/v1/calls/",
        {"reader_study": _rs(x), "lesion": _lesion(x), "malignant": True, "probability": 80},
        format="json",
    ),
    "study sr": lambda c, x: c.get(f"/api/v1/studies/{x['study_a'].study_instance_uid}/sr/"),
    "read heat maps": lambda c, x: _with_heat_map(
        x, c.get, f"/api/v1/lesions/{_lesion(x)}/heat-maps/"
    ),
    "heat map dicom": lambda c, x: _with_heat_map(
        x, c.get, f"/api/v1/lesions/{_lesion(x)}/heat-maps/CM.dcm"
    ),
    "heat maps, aided, before the unaided lock": lambda c, x: _with_aided_heat_map(
        x, c.get, f"/api/v1/lesions/{_lesion(x)}/heat-maps/", locked=False
    ),
    "heat maps, aided, after the unaided lock": lambda c, x: _with_aided_heat_map(
        x, c.get, f"/api/v1/lesions/{_lesion(x)}/heat-maps/"
    ),
    "heat map dicom, aided, after the unaided lock": lambda c, x: _with_aided_heat_map(
        x, c.get, f"/api/v1/lesions/{_lesion(x)}/heat-maps/CM.dcm"
    ),
    "heat maps, unaided-only study, after the lock": lambda c, x: _with_aided_heat_map(
        x, c.get, f"/api/v1/lesions/{_lesion(x)}/heat-maps/", design=ReaderStudy.Design.UNAIDED
    ),
    "heat map dicom, unaided-only study, after the lock": lambda c, x: _with_aided_heat_map(
        x,
        c.get,
        f"/api/v1/lesions/{_lesion(x)}/heat-maps/CM.dcm",
        design=ReaderStudy.Design.UNAIDED,
    ),
}

ANON = (401, 403)  # refused before any lookup; which one depends on the first authentication class

# endpoint -> expected status for reader, other_reader, coordinator, admin, anonymous
MATRIX = {
    "list reader studies": (200, 200, 200, 200, ANON),
    "read reader study": (200, 404, 200, 200, ANON),
    "create reader study": (403, 403, 201, 201, ANON),
    "change reader study": (403, 404, 200, 200, ANON),
    "delete reader study": (403, 404, 204, 204, ANON),
    "unblind reader study": (403, 404, 200, 200, ANON),
    "close reader study": (403, 404, 200, 200, ANON),
    "worklist": (200, 404, 200, 200, ANON),
    "export csv": (403, 404, 200, 200, ANON),
    "list lesions": (200, 200, 200, 200, ANON),
    "read lesion": (200, 404, 200, 200, ANON),
    "create lesion": (201, 403, 201, 201, ANON),
    "change lesion": (403, 404, 200, 200, ANON),
    "delete lesion": (403, 404, 204, 204, ANON),
    "list rois": (200, 200, 200, 200, ANON),
    "create roi": (201, 400, 201, 201, ANON),
    "change roi": (403, 404, 200, 200, ANON),
    "delete roi": (403, 404, 204, 204, ANON),
    "read pathology": (403, 404, 200, 200, ANON),
    "write pathology": (403, 404, 200, 200, ANON),
    "list calls": (200, 200, 200, 200, ANON),
    "create call": (201, 403, 201, 201, ANON),
    "study sr": (200, 404, 200, 200, ANON),
    "read heat maps": (
        403,
        404,
        200,
        200,
        ANON,
    ),  # readers: only in an aided session (inference.access)
    "heat map dicom": (403, 404, 200, 200, ANON),
    # ?reader_study=A: readers exactly when they may see the model's output there (the frozen version's maps)
    "heat maps, aided, before the unaided lock": (403, 404, 200, 200, ANON),
    "heat maps, aided, after the unaided lock": (200, 404, 200, 200, ANON),
    "heat map dicom, aided, after the unaided lock": (200, 404, 200, 200, ANON),
    "heat maps, unaided-only study, after the lock": (403, 404, 200, 200, ANON),
    "heat map dicom, unaided-only study, after the lock": (403, 404, 200, 200, ANON),
}


@pytest.fixture
def ctx(study_a, reader_study_a, reader_study_b, lesion_a, lesion_b):
    return {
        "study_a": study_a,
        "reader_study_a": reader_study_a,
        "lesion_a": lesion_a,
        "lesion_b": lesion_b,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_permission_matrix(endpoint, role_index, role, ctx, users, api_client_for):
    response = ENDPOINTS[endpoint](api_client_for(users[role]), ctx)
    expected = MATRIX[endpoint][role_index]
    assert response.status_code in (expected if isinstance(expected, tuple) else (expected,)), (
        endpoint,
        role,
        getattr(response, "data", response.content[:300]),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role,expected",
    [
        ("reader", {"A"}),
        ("other_reader", {"B"}),
        ("coordinator", {"A", "B"}),
        ("admin", {"A", "B"}),
    ],
)
def test_each_role_lists_only_the_reader_studies_it_may_see(
    role, expected, ctx, users, api_client_for
):
    names = {
        rs["name"]
        for rs in api_client_for(users[role]).get("/api/v1/reader-studies/").json()["results"]
    }
    assert names == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role,n_lesions", [("reader", 1), ("other_reader", 0), ("coordinator", 1), ("admin", 1)]
)
def test_a_reader_of_another_study_lists_none_of_its_lesions(
    role, n_lesions, ctx, users, api_client_for
):
    response = api_client_for(users[role]).get(
        "/api/v1/lesions/", {"study": ctx["study_a"].study_instance_uid}
    )
    assert response.json()["count"] == n_lesions


@pytest.mark.django_db
def test_a_reader_changes_and_deletes_their_own_roi_but_not_anothers(ctx, reader, api_client_for):
    client = api_client_for(reader)
    created = client.post(
        "/api/v1/rois/",
        {"lesion": ctx["lesion_a"].pk, **roi_values(ctx["study_a"], "EX")},
        format="json",
    )
    assert created.status_code == 201, created.json()
    own = created.json()["id"]
    assert (
        client.patch(f"/api/v1/rois/{own}/", {"stats": {"mean": 99.0}}, format="json").status_code
        == 200
    )
    assert client.delete(f"/api/v1/rois/{own}/").status_code == 204
    assert not ROI.objects.filter(pk=own).exists()


@pytest.mark.django_db
def test_a_reader_cannot_change_a_reader_study_they_read(ctx, reader, api_client_for):
    response = api_client_for(reader).patch(
        f"/api/v1/reader-studies/{ctx['reader_study_a'].pk}/", {"name": "mine"}, format="json"
    )
    assert response.status_code == 403
    assert ReaderStudy.objects.get(pk=ctx["reader_study_a"].pk).name == "A"


@pytest.mark.django_db
def test_the_api_schema_still_generates(coordinator, api_client_for):
    response = api_client_for(coordinator).get("/api/schema/")
    assert response.status_code == 200
    assert (
        b"/api/v1/reader-studies/" in response.content
        and b"/api/v1/calls/{id}/revise/" in response.content
    )
