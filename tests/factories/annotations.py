"""Annotation rows (reader studies, lesions, pathology, reader calls) and ROI request values."""

import factory

from annotations.models import ROI, Lesion, Pathology, ReaderCall, ReaderStudy, Subtype
from tests.factories.archive import StudyFactory


class ReaderStudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReaderStudy

    name = factory.Sequence(lambda n: f"Reader study {n + 1}")


class LesionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesion

    study = factory.SubFactory(StudyFactory)
    label = "L1"
    long_axis_mm = 20.0


class PathologyFactory(factory.django.DjangoModelFactory):
    """Synthetic ground truth: ccRCC (malignant) unless told otherwise."""

    class Meta:
        model = Pathology

    lesion = factory.SubFactory(LesionFactory)
    subtype = Subtype.CCRCC
    malignant = True
    source = Pathology.Source.SYNTHETIC


class ReaderCallFactory(factory.django.DjangoModelFactory):
    """A reader's unlocked call; the probability decides the benign/malignant call."""

    class Meta:
        model = ReaderCall

    lesion = factory.SubFactory(LesionFactory)
    probability = 50
    malignant = factory.LazyAttribute(lambda call: call.probability >= 50)


def roi_values(study, phase="CM", tool="ellipse", points=None, **extra):
    """Request values of an ROI on the first instance of ``study``'s series of ``phase``."""
    series = study.series.get(phase=phase)
    instance = series.instances.first()
    z = instance.image_position_patient[2]
    default_points = {
        "ellipse": [[-10.0, 0.0, z], [10.0, 0.0, z], [0.0, -6.0, z], [0.0, 6.0, z]],
        "rectangle": [[-10.0, -6.0, z], [10.0, -6.0, z], [10.0, 6.0, z], [-10.0, 6.0, z]],
        "length": [[-10.0, 0.0, z], [10.0, 0.0, z]],
        "freehand": [
            [-10.0, 0.0, z],
            [0.0, 8.0, z],
            [10.0, 0.0, z],
            [0.0, -8.0, z],
            [-5.0, -5.0, z],
        ],
    }
    return {
        "series": series.series_instance_uid,
        "sop_instance_uid": instance.sop_instance_uid,
        "frame_number": 1,
        "tool": tool,
        "points": points if points is not None else default_points[tool],
        "stats": {"mean": 160.5, "stdDev": 12.0, "min": 120.0, "max": 200.0},
        **extra,
    }


def unlabelled_copy(lesion):
    """A second lesion on the same study, with the same ROIs and no pathology (one the model has never seen)."""
    copy = LesionFactory(study=lesion.study, label="L9", long_axis_mm=lesion.long_axis_mm)
    for roi in lesion.rois.all():
        ROI.objects.create(
            lesion=copy,
            phase=roi.phase,
            series=roi.series,
            sop_instance_uid=roi.sop_instance_uid,
            tool=roi.tool,
            points=roi.points,
            is_reference=True,
        )
    return copy
