"""make_cohort --import: the cohort in the portal through the ingest path, with truth and simulated readers."""
import pytest
from django.core.management import CommandError, call_command

from annotations.models import Lesion, Pathology, ReaderCall, ReaderStudy, ROI
from portal.models import Instance, Series, Study, Upload


def import_small_cohort(tmp_path, *extra):
    call_command(
        "make_cohort", "--out", str(tmp_path / "cohort"), "--patients", "3", "--seed", "2", "--size", "64",
        "--slices", "24", "--import", "--user", "admin", "--readers", "reader1", "--simulate-readers", "2",
        *extra, verbosity=0,
    )


@pytest.mark.django_db
def test_import_stores_studies_lesions_rois_pathology_and_a_reader_study(tmp_path, admin_user, reader):
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
            assert Instance.objects.filter(series=roi.series, sop_instance_uid=roi.sop_instance_uid).exists()
            assert len(roi.points) == 4 and roi.tool == "ellipse"
    reader_study = ReaderStudy.objects.get()
    assert reader_study.name == "Synthetic cohort seed 2"
    assert reader_study.cases.count() == 3
    assert set(reader_study.readers.values_list("username", flat=True)) == {
        "reader1", "simulated-reader-1", "simulated-reader-2"}
    calls = ReaderCall.objects.all()
    assert calls.count() == 2 * len(lesions)
    assert all(c.simulated and c.locked and c.blinded and 0 <= c.probability <= 100 for c in calls)


@pytest.mark.django_db
def test_import_twice_changes_nothing(tmp_path, admin_user, reader):
    import_small_cohort(tmp_path)
    counts = (Instance.objects.count(), Lesion.objects.count(), ROI.objects.count(), ReaderCall.objects.count())
    import_small_cohort(tmp_path)
    assert (Instance.objects.count(), Lesion.objects.count(), ROI.objects.count(), ReaderCall.objects.count()) == counts


@pytest.mark.django_db
def test_import_with_an_unknown_reader_is_refused_before_anything_is_stored(tmp_path, admin_user):
    with pytest.raises(CommandError, match="no such user"):
        call_command("make_cohort", "--out", str(tmp_path / "c"), "--patients", "1", "--size", "64",
                     "--slices", "16", "--import", "--user", "admin", "--readers", "nobody", verbosity=0)
    assert not Study.objects.exists()
