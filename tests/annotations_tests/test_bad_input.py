"""Every bad input is a clear 4xx naming the field, and nothing in the database changes."""

import json

import pytest

from annotations import services
from annotations.models import ROI, AuditEvent, Lesion, Pathology, ReaderCall, ReaderStudy
from tests.factories.annotations import roi_values
from tests.factories.archive import upload_study


def db_state():
    """Every annotation row with every value: equal before and after means nothing changed."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Lesion, ROI, Pathology, ReaderCall, ReaderStudy, AuditEvent)
    }


@pytest.fixture
def scene(study_a, study_b, reader_study_a, reader_study_b, lesion_a, lesion_b):
    return {
        "study_a": study_a,
        "study_b": study_b,
        "rs_a": reader_study_a,
        "rs_b": reader_study_b,
        "lesion_a": lesion_a,
        "lesion_b": lesion_b,
    }


def assert_refused(response, status, field):
    assert response.status_code == status, response.content
    body = response.json()
    assert field in body, body
    assert body[field] and isinstance(body[field][0], str)


def post_roi(client, scene, **changes):
    body = {"lesion": scene["lesion_a"].pk, **roi_values(scene["study_a"], "EX"), **changes}
    return client.post("/api/v1/rois/", body, format="json")


@pytest.mark.django_db
def test_roi_on_an_instance_of_another_study_names_sop_instance_uid(scene, reader, api_client_for):
    other = roi_values(scene["study_b"], "EX")
    before = db_state()
    response = post_roi(api_client_for(reader), scene, sop_instance_uid=other["sop_instance_uid"])
    assert_refused(response, 400, "sop_instance_uid")
    assert db_state() == before


@pytest.mark.django_db
def test_roi_on_a_series_of_another_study_names_series(scene, reader, api_client_for):
    other = roi_values(scene["study_b"], "EX")
    before = db_state()
    response = post_roi(
        api_client_for(reader),
        scene,
        series=other["series"],
        sop_instance_uid=other["sop_instance_uid"],
    )
    assert_refused(response, 400, "series")
    assert db_state() == before


@pytest.mark.django_db
def test_roi_with_an_unknown_series_uid_names_series(scene, reader, api_client_for):
    before = db_state()
    assert_refused(post_roi(api_client_for(reader), scene, series="1.2.3.4"), 400, "series")
    assert db_state() == before


@pytest.mark.django_db
def test_roi_with_an_instance_of_another_series_of_the_same_study_names_sop_instance_uid(
    scene, reader, api_client_for
):
    cm = roi_values(scene["study_a"], "CM")
    before = db_state()
    assert_refused(
        post_roi(api_client_for(reader), scene, sop_instance_uid=cm["sop_instance_uid"]),
        400,
        "sop_instance_uid",
    )
    assert db_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("phase", ["XX", "unknown", "CM"])
def test_roi_with_an_unknown_or_contradicting_phase_names_phase(
    phase, scene, reader, api_client_for
):
    before = db_state()
    assert_refused(post_roi(api_client_for(reader), scene, phase=phase), 400, "phase")
    assert db_state() == before


@pytest.mark.django_db
def test_roi_on_a_series_whose_phase_is_unknown_names_phase(scene, reader, api_client_for):
    body = {"lesion": scene["lesion_a"].pk, **roi_values(scene["study_a"], "EX")}
    scene["study_a"].series.filter(phase="EX").update(phase="unknown")
    before = db_state()
    assert_refused(api_client_for(reader).post("/api/v1/rois/", body, format="json"), 400, "phase")
    assert db_state() == before


BAD_POINTS = {
    "not a list": ("ellipse", "1,2,3"),
    "flat list": ("length", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    "two coordinates": ("length", [[1.0, 2.0], [3.0, 4.0]]),
    "four coordinates": ("length", [[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]]),
    "string coordinate": ("length", [[1.0, "2", 3.0], [3.0, 4.0, 5.0]]),
    "boolean coordinate": ("length", [[1.0, True, 3.0], [3.0, 4.0, 5.0]]),
    "null coordinate": ("length", [[1.0, None, 3.0], [3.0, 4.0, 5.0]]),
    "ellipse with 3 points": ("ellipse", [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "ellipse with 5 points": ("ellipse", [[0.0, 0.0, 0.0]] * 5),
    "rectangle with 3 points": ("rectangle", [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]),
    "length with 3 points": ("length", [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]),
    "length with 1 point": ("length", [[0.0, 0.0, 0.0]]),
    "freehand with 2 points": ("freehand", [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
    "empty": ("freehand", []),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_POINTS))
def test_malformed_points_name_points_and_store_nothing(case, scene, reader, api_client_for):
    tool, points = BAD_POINTS[case]
    before = db_state()
    assert_refused(post_roi(api_client_for(reader), scene, tool=tool, points=points), 400, "points")
    assert db_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates_name_points(literal, scene, reader, api_client_for):
    body = {"lesion": scene["lesion_a"].pk, **roi_values(scene["study_a"], "EX", tool="length")}
    raw = json.dumps(body).replace('"points": [[-10.0', f'"points": [[{literal}')
    assert literal in raw
    before = db_state()
    response = api_client_for(reader).generic(
        "POST", "/api/v1/rois/", raw, content_type="application/json"
    )
    assert_refused(response, 400, "points")
    assert db_state() == before


@pytest.mark.django_db
def test_malformed_points_in_a_patch_leave_the_roi_unchanged(scene, coordinator, api_client_for):
    roi = scene["lesion_a"].rois.first()
    before = db_state()
    response = api_client_for(coordinator).patch(
        f"/api/v1/rois/{roi.pk}/", {"points": [[0, 0, 0]]}, format="json"
    )
    assert_refused(response, 400, "points")
    assert db_state() == before


@pytest.mark.django_db
def test_unknown_tool_names_tool(scene, reader, api_client_for):
    before = db_state()
    assert_refused(post_roi(api_client_for(reader), scene, tool="circle"), 400, "tool")
    assert db_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("probability", [140, -1, 50.5, "high", None])
def test_probability_out_of_range_names_probability(probability, scene, reader, api_client_for):
    before = db_state()
    body = {
        "reader_study": scene["rs_a"].pk,
        "lesion": scene["lesion_a"].pk,
        "malignant": True,
        "probability": probability,
    }
    assert_refused(
        api_client_for(reader).post("/api/v1/calls/", body, format="json"), 400, "probability"
    )
    assert db_state() == before


@pytest.mark.django_db
def test_call_on_a_lesion_not_in_the_reader_study_names_lesion(
    scene, reader, coordinator, api_client_for
):
    before = db_state()
    body = {
        "reader_study": scene["rs_a"].pk,
        "lesion": scene["lesion_b"].pk,
        "malignant": True,
        "probability": 60,
    }
    assert_refused(
        api_client_for(reader).post("/api/v1/calls/", body, format="json"), 400, "lesion"
    )
    assert_refused(
        api_client_for(coordinator).post("/api/v1/calls/", body, format="json"), 400, "lesion"
    )
    assert db_state() == before


@pytest.mark.django_db
def test_call_in_a_reader_study_the_reader_is_not_assigned_to_is_refused(
    scene, reader, api_client_for
):
    before = db_state()
    body = {
        "reader_study": scene["rs_b"].pk,
        "lesion": scene["lesion_b"].pk,
        "malignant": False,
        "probability": 10,
    }
    assert_refused(
        api_client_for(reader).post("/api/v1/calls/", body, format="json"), 403, "reader_study"
    )
    assert db_state() == before


@pytest.mark.django_db
def test_call_on_an_unassigned_lesion_of_the_readers_own_upload_is_refused(
    scene, reader, api_client_for
):
    own = upload_study(reader)
    lesion = services.create_lesion(own, reader, label="L1")
    before = db_state()
    body = {
        "reader_study": scene["rs_a"].pk,
        "lesion": lesion.pk,
        "malignant": False,
        "probability": 10,
    }
    assert_refused(
        api_client_for(reader).post("/api/v1/calls/", body, format="json"), 400, "lesion"
    )
    assert db_state() == before


@pytest.mark.django_db
def test_editing_a_locked_call_without_revision_is_a_conflict_and_changes_nothing(
    scene, reader, api_client_for
):
    client = api_client_for(reader)
    body = {
        "reader_study": scene["rs_a"].pk,
        "lesion": scene["lesion_a"].pk,
        "malignant": True,
        "probability": 70,
        "lock": True,
    }
    call = client.post("/api/v1/calls/", body, format="json").json()
    before = db_state()
    patched = client.patch(f"/api/v1/calls/{call['id']}/", {"probability": 20}, format="json")
    assert patched.status_code == 409 and "revise" in patched.json()["detail"]
    reposted = client.post(
        "/api/v1/calls/", {**body, "probability": 20, "lock": False}, format="json"
    )
    assert reposted.status_code == 409 and "locked" in reposted.json()["detail"]
    assert db_state() == before


@pytest.mark.django_db
def test_revising_an_unlocked_call_is_a_conflict(scene, reader, api_client_for):
    client = api_client_for(reader)
    body = {
        "reader_study": scene["rs_a"].pk,
        "lesion": scene["lesion_a"].pk,
        "malignant": True,
        "probability": 70,
    }
    call = client.post("/api/v1/calls/", body, format="json").json()
    before = db_state()
    response = client.post(
        f"/api/v1/calls/{call['id']}/revise/", {"probability": 20}, format="json"
    )
    assert response.status_code == 409
    assert db_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({"subtype": "ccRCC", "malignant": False, "source": "surgery"}, "malignant"),
        ({"subtype": "oncocytoma", "malignant": True, "source": "surgery"}, "malignant"),
        ({"subtype": "other_benign", "malignant": True, "source": "biopsy"}, "malignant"),
        ({"subtype": "other_rcc", "malignant": False, "source": "biopsy"}, "malignant"),
        ({"subtype": "sarcoma", "source": "surgery"}, "subtype"),
        ({"subtype": "ccRCC", "source": "autopsy"}, "source"),
        ({"subtype": "ccRCC", "source": "surgery", "date": "2024-13-45"}, "date"),
    ],
)
def test_pathology_contradicting_its_subtype_or_malformed_names_the_field(
    body, field, scene, coordinator, api_client_for
):
    before = db_state()
    response = api_client_for(coordinator).put(
        f"/api/v1/lesions/{scene['lesion_a'].pk}/pathology/", body, format="json"
    )
    assert_refused(response, 400, field)
    assert db_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({"label": "L1"}, "label"),
        ({"label": ""}, "label"),
        ({"label": "L9", "side": "middle"}, "side"),
        ({"label": "L9", "long_axis_mm": -3}, "long_axis_mm"),
        ({"label": "L9", "long_axis_mm": 400}, "long_axis_mm"),
        ({"label": "L9", "study": "1.2.3"}, "study"),
    ],
)
def test_bad_lesion_values_name_the_field(body, field, scene, coordinator, api_client_for):
    before = db_state()
    payload = {"study": scene["study_a"].study_instance_uid, "side": "left", **body}
    assert_refused(
        api_client_for(coordinator).post("/api/v1/lesions/", payload, format="json"), 400, field
    )
    assert db_state() == before


@pytest.mark.django_db
def test_calls_are_refused_while_the_reader_study_is_closed(scene, reader, api_client_for):
    ReaderStudy.objects.filter(pk=scene["rs_a"].pk).update(state="closed")
    before = db_state()
    body = {
        "reader_study": scene["rs_a"].pk,
        "lesion": scene["lesion_a"].pk,
        "malignant": True,
        "probability": 70,
    }
    response = api_client_for(reader).post("/api/v1/calls/", body, format="json")
    assert response.status_code == 409 and "closed" in response.json()["detail"]
    assert db_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("stats", [{"mean": "high"}, {"mean": True}, [1, 2]])
def test_stats_that_are_not_numbers_name_stats(stats, scene, reader, api_client_for):
    before = db_state()
    assert_refused(post_roi(api_client_for(reader), scene, stats=stats), 400, "stats")
    assert db_state() == before
