"""Lesions, ROIs (one reference per phase) and pathology, each change audited."""

import pytest

from annotations import services
from annotations.models import ROI, AuditEvent, Lesion, Pathology
from tests.factories.annotations import roi_values


@pytest.mark.django_db
def test_a_reader_creates_a_lesion_and_an_roi_whose_phase_comes_from_the_series(
    study_a, reader_study_a, reader, api_client_for
):
    client = api_client_for(reader)
    lesion = client.post(
        "/api/v1/lesions/",
        {
            "study": study_a.study_instance_uid,
            "label": "L1",
            "side": "left",
            "location": "",
            "long_axis_mm": 23.5,
        },
        format="json",
    )
    assert lesion.status_code == 201, lesion.json()
    assert lesion.json()["rois"] == [] and "pathology" not in lesion.json()
    roi = client.post(
        "/api/v1/rois/",
        {
            "lesion": lesion.json()["id"],
            **roi_values(study_a, "NG", tool="rectangle"),
            "is_reference": True,
        },
        format="json",
    )
    assert roi.status_code == 201, roi.json()
    assert (
        roi.json()["phase"] == "NG"
        and roi.json()["created_by"] == "reader1"
        and roi.json()["is_reference"] is True
    )
    created = AuditEvent.objects.get(object_type="lesion", action="create")
    assert created.user == reader and created.changes["label"] == [None, "L1"]


@pytest.mark.django_db
@pytest.mark.parametrize("tool", ["ellipse", "rectangle", "length", "freehand"])
def test_every_tool_is_accepted_with_its_point_count(tool, lesion_a, reader, api_client_for):
    response = api_client_for(reader).post(
        "/api/v1/rois/",
        {"lesion": lesion_a.pk, **roi_values(lesion_a.study, "EX", tool=tool)},
        format="json",
    )
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
def test_a_new_reference_roi_unmarks_the_previous_one_of_that_phase(
    lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    previous = client.post(
        "/api/v1/rois/",
        {"lesion": lesion_a.pk, **roi_values(lesion_a.study, "EX"), "is_reference": True},
        format="json",
    )
    response = client.post(
        "/api/v1/rois/",
        {"lesion": lesion_a.pk, **roi_values(lesion_a.study, "EX"), "is_reference": True},
        format="json",
    )
    assert response.status_code == 201
    assert ROI.objects.get(pk=previous.json()["id"]).is_reference is False
    assert ROI.objects.get(pk=response.json()["id"]).is_reference is True
    assert lesion_a.rois.get(phase="NG").is_reference is True
    unmark = AuditEvent.objects.get(
        object_type="roi", object_id=previous.json()["id"], action="update"
    )
    assert unmark.changes == {"is_reference": [True, False]} and unmark.user == reader


@pytest.mark.django_db
def test_a_reader_cannot_replace_a_reference_roi_drawn_by_someone_else_and_nothing_changes(
    lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    coordinators = lesion_a.rois.get(phase="CM")
    audited = AuditEvent.objects.count()
    response = client.post(
        "/api/v1/rois/",
        {"lesion": lesion_a.pk, **roi_values(lesion_a.study, "CM"), "is_reference": True},
        format="json",
    )
    assert response.status_code == 403
    assert "reference ROI of phase CM is someone else's" in response.json()["is_reference"][0]
    assert list(lesion_a.rois.filter(phase="CM").values_list("pk", "is_reference")) == [
        (coordinators.pk, True)
    ]
    assert AuditEvent.objects.count() == audited
    own = client.post(
        "/api/v1/rois/", {"lesion": lesion_a.pk, **roi_values(lesion_a.study, "CM")}, format="json"
    )
    assert own.status_code == 201  # drawing one without is_reference stays allowed
    patched = client.patch(
        f"/api/v1/rois/{own.json()['id']}/", {"is_reference": True}, format="json"
    )
    assert patched.status_code == 403
    assert (
        ROI.objects.get(pk=coordinators.pk).is_reference
        and not ROI.objects.get(pk=own.json()["id"]).is_reference
    )


@pytest.mark.django_db
def test_patching_an_roi_to_reference_unmarks_the_other(lesion_a, coordinator, api_client_for):
    other = services.create_roi(lesion_a, coordinator, **roi_values(lesion_a.study, "CM"))
    response = api_client_for(coordinator).patch(
        f"/api/v1/rois/{other.pk}/", {"is_reference": True}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert list(
        lesion_a.rois.filter(phase="CM", is_reference=True).values_list("pk", flat=True)
    ) == [other.pk]


@pytest.mark.django_db
def test_lesion_changes_and_deletion_are_audited_with_old_and_new_values(
    lesion_a, coordinator, api_client_for
):
    client = api_client_for(coordinator)
    assert (
        client.patch(
            f"/api/v1/lesions/{lesion_a.pk}/",
            {"long_axis_mm": 25.0, "side": "right"},
            format="json",
        ).status_code
        == 200
    )
    update = AuditEvent.objects.get(object_type="lesion", action="update")
    assert update.changes == {"long_axis_mm": [23.5, 25.0], "side": ["left", "right"]}
    roi_ids = set(lesion_a.rois.values_list("pk", flat=True))
    assert client.delete(f"/api/v1/lesions/{lesion_a.pk}/").status_code == 204
    assert not Lesion.objects.filter(pk=lesion_a.pk).exists()
    deleted = set(
        AuditEvent.objects.filter(action="delete").values_list("object_type", "object_id")
    )
    assert (
        ("lesion", lesion_a.pk) in deleted
        and {("roi", pk) for pk in roi_ids} <= deleted
        and ("pathology", lesion_a.pathology.pk) in deleted
    )


@pytest.mark.django_db
def test_a_reader_deletes_their_own_lesion_but_not_one_with_pathology(
    study_a, reader_study_a, reader, coordinator, api_client_for
):
    client = api_client_for(reader)
    own = client.post(
        "/api/v1/lesions/", {"study": study_a.study_instance_uid, "label": "L7"}, format="json"
    ).json()
    assert client.delete(f"/api/v1/lesions/{own['id']}/").status_code == 204
    again = services.create_lesion(study_a, reader, label="L8")
    services.set_pathology(again, "oncocytoma", user=coordinator)
    assert client.delete(f"/api/v1/lesions/{again.pk}/").status_code == 409
    assert Lesion.objects.filter(pk=again.pk).exists()


@pytest.mark.django_db
def test_pathology_malignancy_follows_the_subtype_and_each_change_is_a_revision(
    lesion_a, coordinator, api_client_for
):
    client = api_client_for(coordinator)
    url = f"/api/v1/lesions/{lesion_a.pk}/pathology/"
    assert client.get(url).json()["revision"] == 1
    changed = client.put(
        url, {"subtype": "oncocytoma", "source": "biopsy", "date": "2024-01-02"}, format="json"
    ).json()
    assert (changed["malignant"], changed["revision"], changed["entered_by"]) == (
        False,
        2,
        "coordinator",
    )
    same = client.put(
        url,
        {"subtype": "oncocytoma", "malignant": False, "source": "biopsy", "date": "2024-01-02"},
        format="json",
    ).json()
    assert same["revision"] == 2, "an unchanged PUT is not a new revision"
    other_rcc = client.put(url, {"subtype": "other_rcc", "source": "surgery"}, format="json").json()
    assert other_rcc["malignant"] is True and other_rcc["revision"] == 3
    update = (
        AuditEvent.objects.filter(object_type="pathology", action="update").order_by("id").first()
    )
    assert update.changes["subtype"] == ["ccRCC", "oncocytoma"] and update.changes["malignant"] == [
        True,
        False,
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "subtype,malignant",
    [
        ("ccRCC", True),
        ("papillary", True),
        ("chromophobe", True),
        ("other_rcc", True),
        ("oncocytoma", False),
        ("fp_aml", False),
        ("other_benign", False),
    ],
)
def test_set_pathology_derives_malignancy_from_every_subtype(
    subtype, malignant, lesion_b, coordinator
):
    assert services.set_pathology(lesion_b, subtype, user=coordinator).malignant is malignant


@pytest.mark.django_db
def test_create_lesion_with_reference_rois_finds_the_series_of_each_phase(study_a, coordinator):
    rois = {
        phase: {k: v for k, v in roi_values(study_a, phase).items() if k != "series"}
        for phase in ("NC", "CM", "NG", "EX")
    }
    lesion = services.create_lesion_with_reference_rois(
        study_a, "L3", "right", 31.0, rois, coordinator
    )
    assert sorted(lesion.rois.filter(is_reference=True).values_list("phase", flat=True)) == [
        "CM",
        "EX",
        "NC",
        "NG",
    ]
    assert Pathology.objects.filter(lesion=lesion).count() == 0
    assert AuditEvent.objects.filter(object_type="roi", action="create").count() == 4
