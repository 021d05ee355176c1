"""inference.synthetic: a cohort rendered in memory gives the very patches the archive path cuts after import."""

import numpy as np
import pytest
from django.core.management import call_command

from annotations.models import Lesion
from cohort.spec import CohortSpec
from inference import datasets
from inference.experiments import PatchSpec
from inference.synthetic import lesion_crops


@pytest.mark.django_db
@pytest.mark.parametrize(
    "patch",
    [
        PatchSpec(
            field_of_view_mm=48, size_px=32, neighbours=2, window_level=100, window_width=600
        ),
        PatchSpec(size_px=24, roi_scale=3, mask_scale=1.8, roi_channels=True, neighbours=1),
    ],
)
def test_in_memory_crops_give_the_patches_of_the_imported_cohort(
    tmp_path, admin_user, settings, patch
):
    settings.VAR_DIR = tmp_path / "var"
    call_command(
        "make_cohort",
        "--out",
        str(tmp_path / "cohort"),
        "--patients",
        "3",
        "--seed",
        "4",
        "--size",
        "64",
        "--slices",
        "24",
        "--import",
        "--user",
        "admin",
        verbosity=0,
    )
    crops = lesion_crops(CohortSpec(patients=3, seed=4, size=64, slices=24))
    lesions = {
        f"{l.study.patient.patient_id}-{l.label}": l
        for l in Lesion.objects.select_related("study__patient").prefetch_related("rois")
    }
    assert len(lesions) == len(crops.lesions)
    in_memory = crops.patches(("CM", "EX"), patch)
    for i, lesion in enumerate(crops.lesions):
        archived = datasets.lesion_patches(
            lesions[lesion.lesion_id], ("CM", "EX"), patch, use_cache=False
        )
        np.testing.assert_allclose(in_memory[i], archived, atol=1e-5)
    assert list(crops.labels) == [int(lesion.malignant) for lesion in crops.lesions]
