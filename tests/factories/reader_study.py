"""A synthetic reader study in the database, for the comparison tests (rows made with bulk_create).

Readers' probabilities and models' scores are drawn around the pathology truth so
that the curves look like a real study: readers AUC ~0.8, models ~0.85-0.9.
"""

from dataclasses import dataclass

import numpy as np
from django.utils import timezone

from annotations.models import (
    Lesion,
    Pathology,
    ReaderCall,
    ReaderStudy,
    ReaderStudyCase,
    Subtype,
)
from archive.models import Patient, Study
from inference.models import Prediction, PredictionKind
from portal.roles import READER
from tests.factories.annotations import (
    LesionFactory,
    PathologyFactory,
    ReaderCallFactory,
    ReaderStudyFactory,
)
from tests.factories.archive import PatientFactory, StudyFactory
from tests.factories.inference import ModelVersionFactory
from tests.factories.users import UserFactory

MALIGNANT = [Subtype.CCRCC, Subtype.CCRCC, Subtype.CCRCC, Subtype.PAPILLARY, Subtype.CHROMOPHOBE]
BENIGN = [Subtype.ONCOCYTOMA, Subtype.ONCOCYTOMA, Subtype.FAT_POOR_AML]
VARIANT_STRENGTH = {"NC": 0.7, "CM": 1.1, "NG": 0.95, "EX": 0.72, "CM+NG": 1.05, "ALL": 1.0}


@dataclass
class SyntheticStudy:
    reader_study: ReaderStudy
    readers: list
    lesions: list
    model_versions: list


def build_reader_study(
    n_lesions=60,
    n_readers=3,
    variants=("CM", "EX"),
    seed=0,
    lesions_per_patient=1,
    simulated_readers=(),
    name="Synthetic reader study",
    state=ReaderStudy.State.CLOSED,
    username_prefix="rdr",
):
    """Patients, studies, lesions with pathology, locked blinded calls and out-of-fold predictions."""
    rng = np.random.default_rng(seed)
    n_patients = -(-n_lesions // lesions_per_patient)
    patients = Patient.objects.bulk_create(
        [
            PatientFactory.build(
                patient_id=f"{username_prefix.upper()}{seed:02d}-{i + 1:04d}",
                sex=rng.choice(["F", "M"], p=[0.4, 0.6]),
                age_years=int(rng.integers(28, 86)),
            )
            for i in range(n_patients)
        ]
    )
    studies = Study.objects.bulk_create(
        [
            StudyFactory.build(
                study_instance_uid=f"2.25.{seed}{abs(hash(name)) % 10**9}{i + 1}", patient=p
            )
            for i, p in enumerate(patients)
        ]
    )
    reader_study = ReaderStudyFactory(name=name, state=state)
    ReaderStudyCase.objects.bulk_create(
        [
            ReaderStudyCase(reader_study=reader_study, study=s, position=i)
            for i, s in enumerate(studies)
        ]
    )
    truth = (rng.random(n_lesions) < 0.62).astype(int)
    truth[:2] = (1, 0)
    lesions = Lesion.objects.bulk_create(
        [
            LesionFactory.build(
                study=studies[i // lesions_per_patient],
                label=f"L{i % lesions_per_patient + 1}",
                long_axis_mm=float(np.round(rng.uniform(9, 40), 1)),
            )
            for i in range(n_lesions)
        ]
    )
    Pathology.objects.bulk_create(
        [
            PathologyFactory.build(
                lesion=lesion,
                malignant=bool(t),
                subtype=(MALIGNANT if t else BENIGN)[
                    int(rng.integers(0, len(MALIGNANT if t else BENIGN)))
                ],
            )
            for lesion, t in zip(lesions, truth)
        ]
    )
    users = [
        UserFactory(
            username=f"{username_prefix}{i + 1:02d}",
            first_name="Reader",
            last_name=f"{i + 1}",
            role=READER,
        )
        for i in range(n_readers)
    ]
    reader_study.readers.add(*users)
    now = timezone.now()
    calls = []
    for r, user in enumerate(users):
        skill = rng.uniform(0.7, 1.0)
        latent = skill * (2 * truth - 1) + rng.normal(0, 1.25, n_lesions)
        probability = np.clip(np.round(100 / (1 + np.exp(-latent)) / 5) * 5, 0, 100).astype(int)
        calls.extend(
            ReaderCallFactory.build(
                reader_study=reader_study,
                lesion=lesion,
                reader=user,
                probability=int(p),
                locked_at=now,
                simulated=r in simulated_readers,
            )
            for lesion, p in zip(lesions, probability)
        )
    ReaderCall.objects.bulk_create(calls)
    versions = []
    for variant in variants:
        version = ModelVersionFactory(variant=variant, is_active=True)
        strength = VARIANT_STRENGTH.get(variant, 1.0)
        latent = strength * (2 * truth - 1) + rng.normal(0, 1.3, n_lesions)
        scores = 1 / (1 + np.exp(-latent))
        Prediction.objects.bulk_create(
            [
                Prediction(
                    model_version=version,
                    lesion=lesion,
                    kind=PredictionKind.OUT_OF_FOLD,
                    fold=int(i % 5) + 1,
                    score=float(s),
                )
                for i, (lesion, s) in enumerate(zip(lesions, scores))
            ]
        )
        versions.append(version)
    return SyntheticStudy(reader_study, users, lesions, versions)
