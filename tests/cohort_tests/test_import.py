"""make_cohort --import: the cohort in the portal through the ingest path, with truth and simulated readers."""

import math

import numpy as np
import pydicom
import pytest
from django.core.management import CommandError, call_command

from annotations.models import ROI, Lesion, Pathology, ReaderCall, ReaderStudy, Session
from archive.models import Instance, Series, Study, Upload
from cohort.importer import (
    CohortImportError,
    cohort_lesions,
    record_simulated_aided_calls,
)
from cohort.latents import sample_cohort
from cohort.readers import simulate_aided_reader_calls
from cohort.spec import CohortSpec


def import_small_cohort(tmp_path, *extra):
    call_command(
        "make_cohort",
        "--out",
        str(tmp_path / "cohort"),
        "--patients",
        "3",
        "--seed",
        "2",
        "--size",
        "64",
        "--slices",
        "24",
        "--import",
        "--user",
        "admin",
        "--readers",
        "reader1",
        "--simulate-readers",
        "2",
        *extra,
        verbosity=0,
    )


@pytest.mark.django_db
def test_import_stores_studies_lesions_rois_pathology_and_a_reader_study(
    tmp_path, admin_user, reader
):
    import_small_cohort(tmp_path)
    assert Study.objects.count() == 3
    assert Instance.objects.count() == 3 * 4 * 24
    assert {s.phase for s in Series.objects.all()} == {"NC", "CM", "NG", "EX"}
    assert all(u.channel == "command" for u in Upload.objects.all())
    lesions = list(Lesion.objects.select_related("pathology"))
    assert lesions and all(hasattr(lesion, "pathology") for lesion in lesions)
    assert all(lesion.pathology.source == Pathology.Source.SYNTHETIC for lesion in lesions)
    for lesion in lesions:
        rois = ROI.objects.filter(lesion=lesion, is_reference=True)
        assert sorted(r.phase for r in rois) == ["CM", "EX", "NC", "NG"]
        for roi in rois:
            assert roi.series.phase == roi.phase
            assert Instance.objects.filter(
                series=roi.series, sop_instance_uid=roi.sop_instance_uid
            ).exists()
            assert len(roi.points) == 4 and roi.tool == "ellipse"
    reader_study = ReaderStudy.objects.get()
    assert reader_study.name == "Synthetic cohort seed 2"
    assert reader_study.cases.count() == 3
    assert set(reader_study.readers.values_list("username", flat=True)) == {
        "reader1",
        "simulated-reader-1",
        "simulated-reader-2",
    }
    calls = ReaderCall.objects.all()
    assert calls.count() == 2 * len(lesions)
    assert all(c.simulated and c.locked and c.blinded and 0 <= c.probability <= 100 for c in calls)


@pytest.mark.django_db
def test_import_twice_changes_nothing(tmp_path, admin_user, reader):
    import_small_cohort(tmp_path)
    counts = (
        Instance.objects.count(),
        Lesion.objects.count(),
        ROI.objects.count(),
        ReaderCall.objects.count(),
    )
    import_small_cohort(tmp_path)
    assert (
        Instance.objects.count(),
        Lesion.objects.count(),
        ROI.objects.count(),
        ReaderCall.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_import_with_an_unknown_reader_is_refused_before_anything_is_stored(tmp_path, admin_user):
    with pytest.raises(CommandError, match="no such user"):
        call_command(
            "make_cohort",
            "--out",
            str(tmp_path / "c"),
            "--patients",
            "1",
            "--size",
            "64",
            "--slices",
            "16",
            "--import",
            "--user",
            "admin",
            "--readers",
            "nobody",
            verbosity=0,
        )
    assert not Study.objects.exists()


@pytest.mark.django_db
def test_imported_reference_rois_carry_mean_sd_min_max_and_area_measured_on_their_slice(
    tmp_path, admin_user, reader
):
    import_small_cohort(tmp_path)
    rois = list(ROI.objects.filter(is_reference=True).select_related("series"))
    assert rois
    for roi in rois:
        assert set(roi.stats) == {"mean", "stdDev", "min", "max", "area"}, roi.stats
        # the circle's four points: top, bottom, left, right (cohort.files.circle_points)
        (cx, top, _), (_, bottom, _), _, _ = roi.points
        radius = (bottom - top) / 2
        assert roi.stats["area"] == pytest.approx(math.pi * radius**2, abs=1e-3)
        instance = Instance.objects.get(sop_instance_uid=roi.sop_instance_uid)
        with instance.file.open("rb") as handle:
            dataset = pydicom.dcmread(handle)
        hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
        x0, y0, _ = (float(v) for v in dataset.ImagePositionPatient)
        row_mm, column_mm = (float(v) for v in dataset.PixelSpacing)
        y, x = np.mgrid[: hu.shape[0], : hu.shape[1]]
        disc = (x0 + x * column_mm - cx) ** 2 + (y0 + y * row_mm - (top + radius)) ** 2 <= radius**2
        assert roi.stats["mean"] == pytest.approx(hu[disc].mean(), abs=1e-3)
        assert (
            roi.stats["stdDev"] == pytest.approx(hu[disc].std(), abs=1e-3)
            and roi.stats["stdDev"] > 0
        )
        assert (roi.stats["min"], roi.stats["max"]) == (hu[disc].min(), hu[disc].max())


def _small_cohort_lesions(seed=2):
    """The generator's lesions of import_small_cohort (latents only), in import order."""
    return [
        lesion
        for case in sample_cohort(CohortSpec(patients=3, seed=seed, size=64, slices=24))
        for lesion in case.lesions
    ]


def _oracle_scores(lesions):
    return {lesion.lesion_id: 1 / (1 + math.exp(-lesion.oracle_llr)) for lesion in lesions}


@pytest.mark.django_db
def test_simulated_readers_of_a_sequential_import_record_aided_calls_toward_the_models_score_once(
    tmp_path, admin_user, reader
):
    import_small_cohort(tmp_path, "--design", "sequential")
    reader_study = ReaderStudy.objects.get()
    assert reader_study.design == ReaderStudy.Design.SEQUENTIAL
    lesions = _small_cohort_lesions()
    scores = _oracle_scores(lesions)
    assert record_simulated_aided_calls(
        reader_study, lesions, 2, 2, scores, changed_by=admin_user
    ) == 2 * len(lesions)

    expected = simulate_aided_reader_calls(
        lesions, 2, 2, [scores[lesion.lesion_id] for lesion in lesions]
    )
    rows = cohort_lesions(reader_study)
    for call in expected.aided:
        reader_name = f"simulated-reader-{call.reader + 1}"
        lesion = rows[call.lesion_id]
        aided = ReaderCall.objects.get(
            lesion=lesion, reader__username=reader_name, session=Session.AIDED
        )
        unaided = ReaderCall.objects.get(
            lesion=lesion, reader__username=reader_name, session=Session.UNAIDED
        )
        assert aided.simulated and aided.blinded and aided.is_current and aided.locked
        assert (aided.probability, aided.malignant) == (
            round(call.probability),
            call.malignant_call,
        )
        assert aided.locked_at >= unaided.locked_at
    assert not ReaderCall.objects.filter(reader=reader).exists()  # real readers read through the UI
    assert record_simulated_aided_calls(reader_study, lesions, 2, 2, scores) == 0  # idempotent


@pytest.mark.django_db
def test_simulated_aided_calls_are_refused_without_the_sequential_design_or_for_another_cohort_and_nothing_is_stored(
    tmp_path, admin_user, reader
):
    import_small_cohort(tmp_path)
    reader_study = ReaderStudy.objects.get()
    lesions = _small_cohort_lesions()
    with pytest.raises(CohortImportError, match="sequential design"):
        record_simulated_aided_calls(reader_study, lesions, 2, 2, _oracle_scores(lesions))
    reader_study.design = ReaderStudy.Design.SEQUENTIAL
    reader_study.save()
    with pytest.raises(CohortImportError, match="not the simulated one of this cohort"):
        record_simulated_aided_calls(
            reader_study, lesions, 2, 3, _oracle_scores(lesions)
        )  # another seed
    scores = _oracle_scores(lesions)
    scores.pop(lesions[-1].lesion_id)
    with pytest.raises(
        CohortImportError, match=f"no model score for lesion\\(s\\) {lesions[-1].lesion_id}"
    ):
        record_simulated_aided_calls(reader_study, lesions, 2, 2, scores)
    with pytest.raises(CohortImportError, match="no simulated reader\\(s\\) simulated-reader-3"):
        record_simulated_aided_calls(reader_study, lesions, 3, 2, _oracle_scores(lesions))
    assert not ReaderCall.objects.filter(session=Session.AIDED).exists()


@pytest.mark.django_db
def test_import_with_crossover_and_simulated_readers_is_refused_before_anything_is_written(
    tmp_path, admin_user
):
    with pytest.raises(CommandError, match="--design crossover"):
        call_command(
            "make_cohort",
            "--out",
            str(tmp_path / "c"),
            "--patients",
            "1",
            "--size",
            "64",
            "--slices",
            "16",
            "--import",
            "--user",
            "admin",
            "--simulate-readers",
            "2",
            "--design",
            "crossover",
            verbosity=0,
        )
    assert not (tmp_path / "c").exists() and not Study.objects.exists()


@pytest.mark.django_db
def test_import_into_an_existing_reader_study_of_another_design_is_refused(
    tmp_path, admin_user, reader
):
    ReaderStudy.objects.create(name="Synthetic cohort seed 2")
    with pytest.raises(CommandError, match="already exists with design unaided, not sequential"):
        import_small_cohort(tmp_path, "--design", "sequential")
    assert not Study.objects.exists()
