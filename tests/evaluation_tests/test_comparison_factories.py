"""The synthetic reader study that the comparison tests build (``tests.factories.reader_study``)."""

from annotations.models import ReaderCall
from tests.factories.reader_study import build_reader_study


def test_synthetic_study_has_one_locked_call_per_lesion_and_reader(db):
    study = build_reader_study(n_lesions=12, n_readers=2, variants=("CM",))
    assert (
        ReaderCall.objects.filter(reader_study=study.reader_study, locked_at__isnull=False).count()
        == 24
    )
    assert study.model_versions[0].predictions.count() == 12
