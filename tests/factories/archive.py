"""Archive rows: patients and studies as bare rows, or a whole CT study stored through ingest."""

import factory

from archive.ingest import ingest_upload
from archive.models import Patient, Study
from tests.factories.dicom import dataset_bytes, make_ct_study


class PatientFactory(factory.django.DjangoModelFactory):
    """A pseudonymous patient (no DICOM files): for statistics over many lesions."""

    class Meta:
        model = Patient

    patient_id = factory.Sequence(lambda n: f"SRM-{n + 1:04d}")


class StudyFactory(factory.django.DjangoModelFactory):
    """A study row without series: enough for lesions, pathology and calls."""

    class Meta:
        model = Study

    study_instance_uid = factory.Sequence(lambda n: f"2.25.{n + 1}")
    patient = factory.SubFactory(PatientFactory)


def upload_study(user, n=1, phases=("NC", "CM", "NG", "EX")):
    """Store a multiphase CT study through the one ingest path; returns the Study."""
    slices = make_ct_study(n=n, phases=phases)
    files = [
        (f"{phase}-{i}.dcm", dataset_bytes(ds))
        for phase, datasets in slices.items()
        for i, ds in enumerate(datasets)
    ]
    report = ingest_upload(files, user)
    assert report.status == "stored", report.as_dict()
    return Study.objects.get(study_instance_uid=slices[phases[0]][0].StudyInstanceUID)
