"""A database made before the archive left the portal app migrates forward with every row kept.

The test rolls the test database back to the migrations of the commit before the move,
fills it through the historical models (as that code would have), migrates to the latest
migrations and reads everything back through today's models. It ends at the latest
migrations again, so the tests after it see the normal schema.
"""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotations.models import ROI, Lesion, Pathology, ReaderCall, ReaderStudy, ReaderStudyCase
from archive.models import Instance, Patient, Series, Study, Upload
from portal.roles import READER, UPLOAD_STUDIES, can

BEFORE_THE_MOVE = [
    ("annotations", "0004_crossover_washout"),
    ("inference", "0005_reader_study_model"),
    ("evaluation", "0001_initial"),
    ("portal", "0003_hash_drf_api_tokens"),
    ("archive", None),  # the app did not exist yet
]

# (app label and model name before the move, today's model): every row is compared column by column.
MOVED_OR_POINTING_AT_MOVED = [
    ("portal", "Patient", Patient),
    ("portal", "Study", Study),
    ("portal", "Series", Series),
    ("portal", "Upload", Upload),
    ("portal", "Instance", Instance),
    ("annotations", "ReaderStudy", ReaderStudy),
    ("annotations", "ReaderStudyCase", ReaderStudyCase),
    ("annotations", "Lesion", Lesion),
    ("annotations", "ROI", ROI),
    ("annotations", "Pathology", Pathology),
    ("annotations", "ReaderCall", ReaderCall),
]


def migrate_to(targets):
    """Apply or unapply migrations of the test database up to ``targets``; returns the historical apps."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    targets = targets or leaves
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    # The state also holds the apps the targets leave alone (contenttypes, auth ...) at their latest.
    named = {app_label for app_label, _ in targets}
    nodes = [t for t in targets if t[1] is not None] + [n for n in leaves if n[0] not in named]
    return executor.loader.project_state(nodes).apps


def fill_before_the_move(apps):
    """One of each archive and annotation row, written as the code before the move wrote them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")

    series_type = ContentType.objects.get(app_label="portal", model="series")
    change_series = Permission.objects.get(content_type=series_type, codename="change_series")
    capabilities = Permission.objects.filter(
        content_type__app_label="portal", content_type__model="capability"
    )
    reader_group, _ = Group.objects.get_or_create(name=READER)
    reader_group.permissions.add(capabilities.get(codename=UPLOAD_STUDIES))
    reader = User.objects.create(username="reader-before-the-move")
    reader.groups.add(reader_group)
    reader.user_permissions.add(change_series)

    patient = apps.get_model("portal", "Patient").objects.create(
        patient_id="SRM-MOVE-1", sex="F", age_years=61
    )
    study = apps.get_model("portal", "Study").objects.create(
        study_instance_uid="2.25.1001",
        patient=patient,
        study_date=datetime.date(2024, 3, 5),
        description="CT abdomen multiphase",
        created_by=reader,
    )
    series = apps.get_model("portal", "Series").objects.create(
        series_instance_uid="2.25.1002",
        study=study,
        modality="CT",
        series_number=3,
        phase="CM",
        phase_source="manual",
        automatic_phase="NG",
        phase_set_by=reader,
    )
    upload = apps.get_model("portal", "Upload").objects.create(
        user=reader, channel="rest", status="stored", n_stored=1, report=[{"file": "IM0001.dcm"}]
    )
    apps.get_model("portal", "Instance").objects.create(
        sop_instance_uid="2.25.1003",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        series=series,
        upload=upload,
        instance_number=1,
        image_position_patient=[-160.0, -160.0, 12.5],
        slice_position=12.5,
        pixel_spacing=[0.7, 0.7],
        rows=16,
        columns=16,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        sha256="a" * 64,
        file="instances/aa/aaaa.dcm",
        size_bytes=2048,
        metadata={"00080060": {"vr": "CS", "Value": ["CT"]}},
    )

    reader_study = apps.get_model("annotations", "ReaderStudy").objects.create(
        name="Before the move", seed=3
    )
    reader_study.readers.add(reader)
    apps.get_model("annotations", "ReaderStudyCase").objects.create(
        reader_study=reader_study, study=study, position=1
    )
    lesion = apps.get_model("annotations", "Lesion").objects.create(
        study=study, label="L1", side="left", long_axis_mm=23.5, created_by=reader
    )
    apps.get_model("annotations", "ROI").objects.create(
        lesion=lesion,
        phase="CM",
        series=series,
        sop_instance_uid="2.25.1003",
        tool="ellipse",
        points=[[-10.0, 0.0, 12.5], [10.0, 0.0, 12.5], [0.0, -6.0, 12.5], [0.0, 6.0, 12.5]],
        is_reference=True,
        created_by=reader,
    )
    apps.get_model("annotations", "Pathology").objects.create(
        lesion=lesion, subtype="ccRCC", malignant=True, source="surgery", entered_by=reader
    )
    apps.get_model("annotations", "ReaderCall").objects.create(
        reader_study=reader_study, lesion=lesion, reader=reader, malignant=True, probability=80
    )
    return reader.pk


def rows(model):
    """Every row of ``model`` as column values, in primary-key order."""
    return list(model.objects.order_by("pk").values())


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_its_rows_and_permissions():
    try:
        old_apps = migrate_to(BEFORE_THE_MOVE)
        reader_pk = fill_before_the_move(old_apps)
        before = {
            model: rows(old_apps.get_model(app_label, name))
            for app_label, name, model in MOVED_OR_POINTING_AT_MOVED
        }

        migrate_to(None)

        for model, old_rows in before.items():
            assert old_rows, model
            assert rows(model) == old_rows, model
        lesion = Lesion.objects.get()
        assert lesion.study == Study.objects.get(study_instance_uid="2.25.1001")
        assert lesion.rois.get().series.series_instance_uid == "2.25.1002"
        assert ReaderStudy.objects.get().studies.get() == lesion.study
        assert lesion.study.series.get().instances.get().upload == Upload.objects.get()
        assert ContentType.objects.get_for_model(Study).app_label == "archive"
        assert not ContentType.objects.filter(app_label="portal", model__in=["study", "series"])
        assert Permission.objects.filter(codename="change_series").count() == 1
        reader = get_user_model().objects.get(pk=reader_pk)
        assert reader.has_perm("archive.change_series")
        assert not reader.has_perm("archive.change_study")
        assert can(reader, UPLOAD_STUDIES)
    finally:
        migrate_to(None)


@pytest.mark.django_db
def test_an_admin_bookmark_of_the_archive_models_under_portal_leads_to_the_archive_app(
    admin_client,
):
    study = Study.objects.create(
        study_instance_uid="1.2.826.0.1.9",
        patient=Patient.objects.create(patient_id="SRM-BOOKMARK"),
    )
    old = admin_client.get(f"/admin/portal/study/{study.pk}/change/?_changelist_filters=q")
    assert old.status_code == 301
    assert old["Location"] == f"/admin/archive/study/{study.pk}/change/?_changelist_filters=q"
    assert admin_client.get(old["Location"]).status_code == 200
    assert admin_client.get("/admin/portal/capability/").status_code == 404  # only the moved models
