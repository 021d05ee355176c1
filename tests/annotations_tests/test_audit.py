"""The audit log: what is recorded (reader studies, phase overrides, logins, exports, admin changes), and
that no one changes or deletes an event (model, queryset, admin, the database itself)."""

import pytest
from django.db import IntegrityError, InternalError, OperationalError, connection, transaction
from django.db.models.deletion import ProtectedError
from django.urls import reverse

from annotations.models import (
    ROI,
    AuditEvent,
    AuditLogIsAppendOnly,
    Lesion,
    Pathology,
    ReaderCall,
    ReaderStudy,
)

pytestmark = pytest.mark.django_db


def _form_errors(response):
    context = response.context or {}
    return context["adminform"].form.errors if "adminform" in context else response.status_code


def _body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def _events(**filters):
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


# --- reader studies -------------------------------------------------------------


def test_reader_study_create_assignment_unblind_close_reopen_and_delete_are_audited(
    api_client_for, coordinator, admin_user, reader, other_reader, study_a, study_b
):
    client = api_client_for(coordinator)
    created = client.post(
        "/api/v1/reader-studies/",
        {
            "name": "RS",
            "studies": [study_a.study_instance_uid],
            "readers": ["reader1"],
        },
        format="json",
    ).json()
    pk = created["id"]
    (event,) = _events(object_type="readerstudy", object_id=pk)
    assert (event.action, event.user) == ("create", coordinator)
    assert event.changes["readers"] == [None, ["reader1"]]
    assert event.changes["cases"] == [None, [study_a.study_instance_uid]]

    client.patch(
        f"/api/v1/reader-studies/{pk}/",
        {
            "readers": ["reader1", "reader2"],
            "studies": [study_a.study_instance_uid, study_b.study_instance_uid],
        },
        format="json",
    )
    update = _events(object_type="readerstudy", object_id=pk, action="update")[-1]
    assert update.changes["readers"] == [["reader1"], ["reader1", "reader2"]]
    assert update.changes["cases"] == [
        [study_a.study_instance_uid],
        [study_a.study_instance_uid, study_b.study_instance_uid],
    ]

    client.post(f"/api/v1/reader-studies/{pk}/close/")
    client.post(f"/api/v1/reader-studies/{pk}/reopen/")
    api_client_for(admin_user).post(f"/api/v1/reader-studies/{pk}/unblind/")
    states = [
        (e.action, e.changes["state"], e.user)
        for e in _events(object_type="readerstudy", object_id=pk)
        if e.action in ("close", "reopen", "unblind")
    ]
    assert states == [
        ("close", ["open", "closed"], coordinator),
        ("reopen", ["closed", "open"], coordinator),
        ("unblind", ["open", "unblinded"], admin_user),
    ]

    assert client.delete(f"/api/v1/reader-studies/{pk}/").status_code == 204
    deleted = _events(object_type="readerstudy", object_id=pk, action="delete")
    assert len(deleted) == 1 and deleted[0].changes["name"] == ["RS", None]


def test_a_refused_state_change_is_not_audited(api_client_for, coordinator, reader_study_a):
    client = api_client_for(coordinator)
    assert (
        client.post(f"/api/v1/reader-studies/{reader_study_a.pk}/reopen/").status_code == 409
    )  # it is open
    assert not _events(object_type="readerstudy", action="reopen")


# --- phase overrides ------------------------------------------------------------


def test_every_phase_override_is_kept_as_history_from_the_api_and_the_studies_page(
    api_client_for, client, coordinator, study_a
):
    series = study_a.series.get(phase="NG")
    api_client_for(coordinator).post(
        f"/api/v1/series/{series.series_instance_uid}/phase/", {"phase": "EX"}, format="json"
    )
    client.force_login(coordinator)
    client.post(reverse("set-phase", args=[series.series_instance_uid]), {"phase": "NG"})
    history = _events(object_type="series", object_id=series.pk)
    assert [(e.changes["phase"], e.user) for e in history] == [
        (["NG", "EX"], coordinator),
        (["EX", "NG"], coordinator),
    ]
    assert history[0].changes["phase_source"] == ["automatic", "manual"]


# --- logins ---------------------------------------------------------------------


def test_logins_and_failed_logins_are_audited_with_the_username_and_address_never_the_password(
    client, reader
):
    client.post(
        reverse("login"),
        {"username": "reader1", "password": "not-the-password"},
        REMOTE_ADDR="10.1.2.3",
    )
    client.post(
        reverse("login"),
        {"username": "nobody-at-all", "password": "secret-guess"},
        REMOTE_ADDR="10.1.2.4",
    )
    client.post(
        reverse("login"), {"username": "reader1", "password": "pw-reader1"}, REMOTE_ADDR="10.1.2.5"
    )
    failed = _events(action="login_failed")
    assert [(e.changes["username"], e.changes["address"], e.user) for e in failed] == [
        ("reader1", "10.1.2.3", None),
        ("nobody-at-all", "10.1.2.4", None),
    ]
    (login,) = _events(action="login")
    assert (login.user, login.object_type, login.object_id, login.changes["address"]) == (
        reader,
        "user",
        reader.pk,
        "10.1.2.5",
    )
    stored = str(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert (
        "not-the-password" not in stored
        and "secret-guess" not in stored
        and "pw-reader1" not in stored
    )


def test_a_login_is_audited_with_the_address_the_trusted_proxy_saw_never_one_the_client_claims(
    client, reader, settings
):
    form = {"username": "reader1", "password": "pw-reader1"}
    client.post(reverse("login"), form, REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.7")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # one proxy in front
    client.post(reverse("login"), form, REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.8")
    assert [e.changes["address"] for e in _events(action="login")] == ["10.9.9.9", "192.0.2.8"]


# --- downloads and exports ------------------------------------------------------


def test_reader_study_csv_and_sr_exports_are_audited(
    api_client_for, coordinator, reader, reader_study_a, lesion_a, study_a
):
    assert (
        api_client_for(coordinator)
        .get(f"/api/v1/reader-studies/{reader_study_a.pk}/export.csv")
        .status_code
        == 200
    )
    assert (
        api_client_for(reader).get(f"/api/v1/studies/{study_a.study_instance_uid}/sr/").status_code
        == 200
    )
    exports = [
        (e.user, e.object_type, e.object_id, e.changes["file"]) for e in _events(action="export")
    ]
    assert exports == [
        (coordinator, "readerstudy", reader_study_a.pk, f"reader-study-{reader_study_a.pk}.csv"),
        (reader, "study", study_a.pk, f"{study_a.study_instance_uid}-sr.dcm"),
    ]


def test_study_and_series_retrieval_is_a_download_but_single_instances_and_frames_are_not(
    client, coordinator, study_a
):
    client.force_login(coordinator)
    series = study_a.series.get(phase="CM")
    instance = series.instances.get()
    accept = {"HTTP_ACCEPT": 'multipart/related; type="application/dicom"'}
    base = f"/dicomweb/studies/{study_a.study_instance_uid}"
    for url in (
        base,
        f"{base}/series/{series.series_instance_uid}",
        f"{base}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}",
    ):
        response = client.get(url, **accept)
        assert response.status_code == 200 and _body(response)
    client.get(
        f"{base}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}/frames/1"
    )
    client.get(f"/api/v1/instances/{instance.sop_instance_uid}/file/")
    downloads = [
        (e.user, e.object_type, e.object_id, e.changes["instances"])
        for e in _events(action="download")
    ]
    assert downloads == [
        (coordinator, "study", study_a.pk, 4),
        (coordinator, "series", series.pk, 1),
    ]


def test_a_refused_export_is_not_audited(api_client_for, reader, reader_study_a):
    assert (
        api_client_for(reader)
        .get(f"/api/v1/reader-studies/{reader_study_a.pk}/export.csv")
        .status_code
        == 403
    )
    assert not _events(action="export")


# --- append-only ----------------------------------------------------------------


def test_an_audit_event_cannot_be_changed_or_deleted_through_the_orm(lesion_a):
    event = AuditEvent.objects.first()
    count = AuditEvent.objects.count()
    event.action = "delete"
    for attempt in (
        event.save,
        event.delete,
        AuditEvent.objects.all().delete,
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="delete"),
    ):
        with pytest.raises(AuditLogIsAppendOnly):
            attempt()
    assert AuditEvent.objects.count() == count
    assert AuditEvent.objects.get(pk=event.pk).action == "create"


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM annotations_auditevent",
        "UPDATE annotations_auditevent SET action = 'delete'",
    ],
)
def test_the_database_refuses_update_and_delete_of_audit_rows(lesion_a, statement):
    count = AuditEvent.objects.count()
    assert count > 0
    with pytest.raises((IntegrityError, InternalError, OperationalError), match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == count
    assert not AuditEvent.objects.exclude(action="create").exists()


def test_a_user_with_audit_events_cannot_be_deleted(client, reader):
    client.force_login(reader)  # a login: the reader's one audit event
    with pytest.raises(ProtectedError):
        reader.delete()
    assert AuditEvent.objects.filter(user=reader, action="login").exists()


def test_the_admin_shows_audit_events_read_only_and_offers_no_delete(client, admin_user, lesion_a):
    client.force_login(admin_user)
    event = AuditEvent.objects.filter(action="create").first()
    changelist = client.get(reverse("admin:annotations_auditevent_changelist"))
    assert changelist.status_code == 200 and "delete_selected" not in changelist.content.decode()
    assert (
        client.get(reverse("admin:annotations_auditevent_delete", args=[event.pk])).status_code
        == 403
    )
    page = client.get(reverse("admin:annotations_auditevent_change", args=[event.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    client.post(
        reverse("admin:annotations_auditevent_change", args=[event.pk]), {"action": "delete"}
    )
    bulk = {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    client.post(reverse("admin:annotations_auditevent_changelist"), bulk)
    assert AuditEvent.objects.get(pk=event.pk).action == "create"


# --- the admin's changes are audited ----------------------------------------------


def test_admin_changes_and_deletes_of_lesions_rois_pathology_and_calls_are_audited(
    client, admin_user, reader, reader_study_a, lesion_a
):
    client.force_login(admin_user)
    before = AuditEvent.objects.count()
    pathology = lesion_a.pathology
    form = {
        "lesion": lesion_a.pk,
        "subtype": "papillary",
        "malignant": "on",
        "source": "surgery",
        "date": "",
        "revision": pathology.revision,
        "entered_by": admin_user.pk,
    }
    response = client.post(reverse("admin:annotations_pathology_change", args=[pathology.pk]), form)
    assert response.status_code == 302, _form_errors(response)
    update = AuditEvent.objects.get(object_type="pathology", action="update", user=admin_user)
    assert update.changes["subtype"] == ["ccRCC", "papillary"] and update.changes["via"] == "admin"

    call = ReaderCall.objects.create(
        reader_study=reader_study_a, lesion=lesion_a, reader=reader, malignant=True, probability=70
    )
    client.post(reverse("admin:annotations_readercall_delete", args=[call.pk]), {"post": "yes"})
    assert not ReaderCall.objects.filter(pk=call.pk).exists()
    assert (
        AuditEvent.objects.get(object_type="readercall", object_id=call.pk, action="delete").user
        == admin_user
    )

    roi_pks = list(lesion_a.rois.values_list("pk", flat=True))
    client.post(reverse("admin:annotations_lesion_delete", args=[lesion_a.pk]), {"post": "yes"})
    assert not Lesion.objects.filter(pk=lesion_a.pk).exists()
    deleted = set(
        AuditEvent.objects.filter(action="delete", user=admin_user).values_list(
            "object_type", "object_id"
        )
    )
    assert {("lesion", lesion_a.pk), ("pathology", pathology.pk)} | {
        ("roi", pk) for pk in roi_pks
    } <= deleted
    assert (
        not ROI.objects.filter(pk__in=roi_pks).exists()
        and not Pathology.objects.filter(pk=pathology.pk).exists()
    )
    assert AuditEvent.objects.count() > before


def test_assigning_readers_in_the_admin_is_audited(
    client, admin_user, reader, other_reader, reader_study_a, study_a
):
    client.force_login(admin_user)
    case = reader_study_a.cases.get()
    form = {
        "name": "A",
        "instructions": "Call every lesion.",
        "state": "open",
        "case_order": "shuffled",
        "seed": 7,
        "design": "unaided",
        "washout_days": 28,
        "readers": [reader.pk, other_reader.pk],
        "created_by": reader_study_a.created_by_id,
        "cases-TOTAL_FORMS": 1,
        "cases-INITIAL_FORMS": 1,
        "cases-MIN_NUM_FORMS": 0,
        "cases-MAX_NUM_FORMS": 1000,
        "cases-0-id": case.pk,
        "cases-0-reader_study": reader_study_a.pk,
        "cases-0-study": study_a.pk,
        "cases-0-position": 1,
    }
    response = client.post(
        reverse("admin:annotations_readerstudy_change", args=[reader_study_a.pk]), form
    )
    assert response.status_code == 302, _form_errors(response)
    event = AuditEvent.objects.get(
        object_type="readerstudy", object_id=reader_study_a.pk, action="update"
    )
    assert event.user == admin_user and event.changes["readers"] == [
        [reader.pk],
        sorted([reader.pk, other_reader.pk]),
    ]
    assert set(ReaderStudy.objects.get(pk=reader_study_a.pk).readers.all()) == {
        reader,
        other_reader,
    }
