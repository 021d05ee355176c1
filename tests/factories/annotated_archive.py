"""A small archive of multiphase CT studies with one annotated lesion each, for patch extraction and training."""

import numpy as np
from django.contrib.auth import get_user_model

from annotations.models import ROI, Subtype
from archive.ingest import ingest_upload
from archive.models import Study
from tests.factories.annotations import LesionFactory, PathologyFactory
from tests.factories.dicom import dataset_bytes, make_ct_study

PIXEL_SPACING = 0.7
ORIGIN = -160.0


def _plant_lesion(ds, malignant, rng, size):
    """Noise around the phase's HU with a disc at the image centre: bright if malignant, faint if benign."""
    hu = rng.normal(
        float(np.frombuffer(ds.PixelData, "<u2").mean()) - 1024, 12.0, size=(size, size)
    )
    rr, cc = np.mgrid[:size, :size]
    disc = (rr - (size - 1) / 2) ** 2 + (cc - (size - 1) / 2) ** 2 <= (size / 4) ** 2
    hu[disc] += 90.0 if malignant else 10.0
    ds.PixelData = np.clip(np.round(hu + 1024), 0, 4095).astype("<u2").tobytes()


def build_archive(n_patients, phases=("CM", "NG"), n_slices=5, size=16, seed=0, malignant_every=2):
    """Store ``n_patients`` studies (``size`` x ``size`` images) with lesion L1 centred in each, ROIs and pathology.

    Patient ``i`` is malignant when ``i % malignant_every != 0``; patients 0 and 1 get a
    second lesion (L2) so that some patients have two lesions.
    """
    user, _ = get_user_model().objects.get_or_create(username="archive-uploader")
    rng = np.random.default_rng(seed)
    lesions = []
    for index in range(n_patients):
        malignant = index % malignant_every != 0
        patient_id = f"SRM-{index:04d}"
        study = make_ct_study(
            n=n_slices,
            phases=phases,
            PatientID=patient_id,
            PatientName=patient_id,
            Rows=size,
            Columns=size,
        )
        files = []
        for phase, slices in study.items():
            for ds in slices:
                _plant_lesion(ds, malignant, rng, size)
                files.append((f"{patient_id}-{phase}-{ds.InstanceNumber}.dcm", dataset_bytes(ds)))
        report = ingest_upload(files, user)
        assert report.status == "stored", report.as_dict()
        db_study = Study.objects.get(
            study_instance_uid=next(iter(study.values()))[0].StudyInstanceUID
        )
        labels = ["L1", "L2"] if index < 2 else ["L1"]
        for label in labels:
            lesion = LesionFactory(study=db_study, label=label)
            for phase, slices in study.items():
                centre_slice = slices[n_slices // 2]
                series = db_study.series.get(series_instance_uid=centre_slice.SeriesInstanceUID)
                c = ORIGIN + (size - 1) / 2 * PIXEL_SPACING
                z = float(centre_slice.ImagePositionPatient[2])
                ROI.objects.create(
                    lesion=lesion,
                    phase=phase,
                    series=series,
                    sop_instance_uid=centre_slice.SOPInstanceUID,
                    tool=ROI.Tool.ELLIPSE,
                    points=[[c - 2, c, z], [c + 2, c, z], [c, c - 2, z], [c, c + 2, z]],
                    is_reference=True,
                )
            PathologyFactory(
                lesion=lesion,
                subtype=Subtype.CCRCC if malignant else Subtype.ONCOCYTOMA,
                malignant=malignant,
            )
            lesions.append(lesion)
    return lesions
