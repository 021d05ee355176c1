"""Heat maps for readers in the aided session: exactly when they may see the model's output, and only the
frozen model version's maps (``inference.access.may_see_heat_maps``)."""

import io

import pydicom
import pytest

from annotations.models import AuditEvent, ReaderStudy
from inference.aided import freeze_model_version
from tests.factories.annotated_archive import build_archive
from tests.factories.inference import gradient_values, make_heat_maps

CALLS = "/api/v1/calls/"


@pytest.fixture
def lesion(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return build_archive(1, phases=("CM", "NG"), size=48)[0]


def _reader_study(lesion, reader, coordinator, design=ReaderStudy.Design.SEQUENTIAL, name="Aided"):
    study = ReaderStudy.objects.create(name=name, seed=1, created_by=coordinator, design=design)
    study.cases.create(study=lesion.study, position=1)
    study.readers.add(reader)
    return study


@pytest.fixture
def aided(lesion, reader, coordinator):
    """A sequential reader study showing an inactive v1 (frozen) while another, active model has maps too."""
    frozen, _ = make_heat_maps(lesion, ("CM", "NG"), active=False)
    other, _ = make_heat_maps(
        lesion, ("CM",), values=[[1.0, 0.0], [0.0, 0.0]]
    )  # active, not frozen
    reader_study = _reader_study(lesion, reader, coordinator)
    freeze_model_version(reader_study, frozen.pk, coordinator)
    return reader_study, frozen, other


def _maps(client, lesion, reader_study=None, **params):
    if reader_study is not None:
        params["reader_study"] = reader_study.pk
    return client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/", params)


def _dicom(client, lesion, reader_study, phase="CM"):
    return client.get(
        f"/api/v1/lesions/{lesion.pk}/heat-maps/{phase}.dcm", {"reader_study": reader_study.pk}
    )


def _lock_unaided(client, reader_study, lesion):
    body = {
        "reader_study": reader_study.pk,
        "lesion": lesion.pk,
        "malignant": False,
        "probability": 30,
        "lock": True,
    }
    assert client.post(CALLS, body, format="json").status_code == 201


@pytest.mark.django_db
def test_a_reader_gets_the_frozen_versions_maps_only_after_the_unaided_lock(
    aided, lesion, reader, api_client_for
):
    reader_study, frozen, _ = aided
    client = api_client_for(reader)
    refused = _maps(client, lesion, reader_study)
    assert refused.status_code == 403 and "unaided call" in refused.json()["detail"]
    assert _dicom(client, lesion, reader_study).status_code == 403
    _lock_unaided(client, reader_study, lesion)
    body = _maps(client, lesion, reader_study).json()
    assert [(m["phase"], m["model_version"]) for m in body["heat_maps"]] == [
        ("CM", frozen.pk),
        ("NG", frozen.pk),
    ]
    assert (
        body["reader_study"] == reader_study.pk
        and body["heat_maps"][0]["values"] == gradient_values()
    )
    assert body["heat_maps"][0]["dicom"].endswith(
        f"?model_version={frozen.pk}&reader_study={reader_study.pk}"
    )
    # Without the reader study (the unaided session's view), still refused.
    assert _maps(client, lesion).status_code == 403
    assert client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/CM.dcm").status_code == 403


@pytest.mark.django_db
def test_a_reader_never_gets_another_versions_maps(aided, lesion, reader, api_client_for):
    reader_study, frozen, other = aided
    client = api_client_for(reader)
    _lock_unaided(client, reader_study, lesion)
    response = _maps(client, lesion, reader_study, model_version=other.pk)
    assert response.status_code == 400 and "model_version" in response.json()
    assert f"model version {frozen.pk}" in response.json()["model_version"]
    assert _maps(client, lesion, model_version=other.pk).status_code == 403
    chosen = _maps(client, lesion, reader_study, model_version=frozen.pk).json()
    assert {m["model_version"] for m in chosen["heat_maps"]} == {frozen.pk}


@pytest.mark.django_db
def test_the_aided_reader_exports_the_frozen_versions_map_as_dicom_audited(
    aided, lesion, reader, api_client_for
):
    reader_study, frozen, _ = aided
    client = api_client_for(reader)
    _lock_unaided(client, reader_study, lesion)
    # Two models have a CM map (which would need ?model_version= without the study); the study names its one.
    response = _dicom(client, lesion, reader_study)
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert (
        ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"
        and f"model{frozen.pk}" in response["Content-Disposition"]
    )
    event = AuditEvent.objects.filter(action="export", user=reader).get()
    assert (
        event.changes["model_version"] == frozen.pk
        and event.changes["reader_study"] == reader_study.pk
    )


@pytest.mark.django_db
def test_an_unaided_only_study_never_shows_a_reader_heat_maps(
    lesion, reader, coordinator, api_client_for
):
    version, _ = make_heat_maps(lesion, ("CM",))
    reader_study = _reader_study(
        lesion, reader, coordinator, design=ReaderStudy.Design.UNAIDED, name="Unaided"
    )
    freeze_model_version(reader_study, version.pk, coordinator)
    client = api_client_for(reader)
    _lock_unaided(client, reader_study, lesion)
    assert _maps(client, lesion, reader_study).status_code == 403
    assert _dicom(client, lesion, reader_study).status_code == 403


@pytest.mark.django_db
def test_another_reader_is_refused_the_maps_of_a_study_they_do_not_read(
    aided, lesion, reader, other_reader, coordinator, api_client_for
):
    reader_study, _, _ = aided
    _lock_unaided(api_client_for(reader), reader_study, lesion)
    # A reader of another study that shows the same case: the lesion is visible, this reader study is not.
    own = _reader_study(lesion, other_reader, coordinator, name="Own")
    client = api_client_for(other_reader)
    assert _maps(client, lesion, reader_study).status_code == 404
    assert _dicom(client, lesion, reader_study).status_code == 404
    assert _maps(client, lesion, own).status_code == 403  # their own study: no unaided lock yet


@pytest.mark.django_db
def test_bad_or_foreign_reader_study_and_no_frozen_model_are_clear_answers(
    lesion, reader, coordinator, api_client_for
):
    make_heat_maps(lesion, ("CM",))
    client = api_client_for(coordinator)
    response = client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/", {"reader_study": "x1"})
    assert response.status_code == 400 and "reader_study" in response.json()
    assert (
        client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/", {"reader_study": 424242}).status_code
        == 404
    )
    elsewhere = ReaderStudy.objects.create(name="Elsewhere", seed=1, created_by=coordinator)
    response = _maps(client, lesion, elsewhere)
    assert (
        response.status_code == 404
        and "not a lesion of this reader study" in response.json()["detail"]
    )
    unfrozen = _reader_study(lesion, reader, coordinator, name="Unfrozen")
    response = _maps(client, lesion, unfrozen)
    assert response.status_code == 409 and "frozen" in response.json()["detail"]
