"""Heat maps: placement on the image, Grad-CAM / occlusion, storage when a lesion is scored, API, DICOM export."""

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest

from inference import datasets
from inference.heatmaps import (
    PatchWindow,
    bound_map,
    normalise_map,
    occlusion_sensitivity,
    patch_window,
)
from inference.models import HeatMap, Prediction
from inference.patches import sampling_grid
from tests.factories.annotated_archive import build_archive
from tests.factories.inference import (
    HEAT_MAP_PATCH,
    gradient_values,
    make_heat_maps,
    tiny_model_version,
)

# --- pure functions ------------------------------------------------------------------------


def test_the_patch_window_is_the_area_the_sampling_grid_covers():
    grid = sampling_grid((40.3, 21.7), (0.7, 0.5), field_of_view_mm=20.0, size_px=10)
    window = patch_window((40.3, 21.7), (0.7, 0.5), 20.0)
    # The first and last samples sit half a patch pixel inside the window (pixel i covers i .. i + 1).
    pitch_rows, pitch_columns = window.rows / 10, window.columns / 10
    assert grid[0, 0, 0] + 0.5 == pytest.approx(window.row + pitch_rows / 2)
    assert grid[1, 0, 0] + 0.5 == pytest.approx(window.column + pitch_columns / 2)
    assert grid[0, -1, 0] + 0.5 == pytest.approx(window.row + window.rows - pitch_rows / 2)
    assert (window.rows, window.columns) == pytest.approx((20.0 / 0.7, 20.0 / 0.5))


def test_maps_are_scaled_to_their_maximum_and_bounded_in_size():
    assert normalise_map(np.array([[-1.0, 0.0], [2.0, 4.0]])).tolist() == [[0.0, 0.0], [0.5, 1.0]]
    assert normalise_map(np.array([[-1.0, -2.0]])).tolist() == [[0.0, 0.0]]
    big = np.arange(130 * 70, dtype=float).reshape(130, 70)
    assert bound_map(big, 64).shape == (44, 35)
    assert bound_map(np.ones((8, 8)), 64).shape == (8, 8)


def test_occlusion_finds_the_region_and_phase_that_raise_the_score():
    patches = np.zeros((3, 8, 8, 2), np.float32)
    patches[:, 2:4, 4:6, 0] = 1.0  # a bright spot on the first phase drives the score

    def predict(batch):
        return batch[:, :, 2:4, 4:6, 0].mean(axis=(1, 2, 3))

    first = occlusion_sensitivity(predict, patches, channel=0, grid=4)
    second = occlusion_sensitivity(predict, patches, channel=1, grid=4)
    assert np.unravel_index(np.argmax(first), first.shape) == (1, 2) and first[
        1, 2
    ] == pytest.approx(1.0)
    assert np.count_nonzero(first) == 1 and not second.any()


# --- Grad-CAM and storage when the worker scores (in process) ---------------------------------


@pytest.mark.django_db
def test_scoring_a_lesion_stores_a_grad_cam_heat_map_per_phase_placed_on_the_roi_slice(
    settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    lesion = build_archive(1, phases=("CM", "NG"))[0]
    version = tiny_model_version(("CM", "NG"))
    from inference.tasks import score_lesions

    assert score_lesions(version, [lesion.pk]) == 1
    prediction = Prediction.objects.get(model_version=version, lesion=lesion, kind="final")
    maps = {m.phase: m for m in HeatMap.objects.filter(prediction=prediction)}
    assert sorted(maps) == ["CM", "NG"]
    for phase, heat_map in maps.items():
        roi = datasets.reference_roi(lesion, phase)
        assert heat_map.method == "grad_cam" and heat_map.layer.startswith("max_pooling2d")
        assert heat_map.sop_instance_uid == roi.sop_instance_uid
        assert heat_map.series_instance_uid == roi.series.series_instance_uid
        assert (
            heat_map.shape == [2, 2] and len(heat_map.values) == 2
        )  # 8 px patch, two 2x2 poolings
        assert all(0.0 <= v <= 1.0 for row in heat_map.values for v in row)
        # A 10 mm field of view at 0.7 mm pixels, centred on the 16 x 16 image's centre.
        assert heat_map.window_rows == pytest.approx(10.0 / 0.7)
        assert heat_map.window_row + heat_map.window_rows / 2 == pytest.approx(8.0, abs=0.05)
    assert maps["CM"].values == maps["NG"].values  # Grad-CAM: one spatial map for stacked phases

    assert score_lesions(version, [lesion.pk]) == 1  # scoring again replaces the maps
    assert HeatMap.objects.filter(prediction=prediction).count() == 2


def test_models_without_a_top_level_convolutional_block_get_occlusion_maps_per_phase():
    import keras

    from inference.gradcam import last_convolutional_block, lesion_heat_maps
    from inference.networks import build_model

    keras.utils.set_random_seed(0)
    inner = build_model("small_cnn", (8, 8, 2), filters=(4,), dense_units=4)
    inputs = keras.Input((8, 8, 2))
    nested = keras.Model(
        inputs, inner(inputs)
    )  # convolutions inside a nested model, as inception_v3's backbone
    assert last_convolutional_block(nested) is None
    assert last_convolutional_block(inner).name.startswith("max_pooling2d")
    patches = np.random.default_rng(0).random((3, 8, 8, 2)).astype(np.float32)
    maps = lesion_heat_maps(nested, patches, ["CM", "NG"], max_side=64, occlusion_grid=4)
    assert [(m.phase, m.method, m.values.shape) for m in maps] == [
        ("CM", "occlusion", (4, 4)),
        ("NG", "occlusion", (4, 4)),
    ]
    assert all(0.0 <= m.values.min() and m.values.max() <= 1.0 for m in maps)


# --- API --------------------------------------------------------------------------------------


@pytest.fixture
def lesion(settings, tmp_path):
    """A lesion at the centre of 48 x 48 CM and NG images (0.7 mm pixels), ROIs on both."""
    settings.VAR_DIR = tmp_path
    return build_archive(1, phases=("CM", "NG"), size=48)[0]


@pytest.mark.django_db
def test_a_coordinator_gets_each_phase_map_with_its_geometry_method_and_model(
    lesion, coordinator, api_client_for
):
    version, _ = make_heat_maps(lesion, ("CM", "NG"))
    inactive, _ = make_heat_maps(lesion, ("CM",), active=False)
    body = api_client_for(coordinator).get(f"/api/v1/lesions/{lesion.pk}/heat-maps/").json()
    assert [(m["phase"], m["model_version"]) for m in body["heat_maps"]] == [
        ("CM", version.pk),
        ("NG", version.pk),
    ]
    first = body["heat_maps"][0]
    roi = datasets.reference_roi(lesion, "CM")
    assert first["sop_instance_uid"] == roi.sop_instance_uid and first["method"] == "grad_cam"
    assert (
        first["values"] == gradient_values()
        and first["shape"] == [4, 4]
        and first["model"] == str(version)
    )
    assert first["window"]["rows"] == pytest.approx(
        HEAT_MAP_PATCH.field_of_view_mm / roi.series.instances.first().pixel_spacing[0]
    )
    assert body["truncated"] is False
    chosen = api_client_for(coordinator).get(
        f"/api/v1/lesions/{lesion.pk}/heat-maps/", {"model_version": inactive.pk}
    )
    assert [m["model_version"] for m in chosen.json()["heat_maps"]] == [inactive.pk]


@pytest.mark.django_db
def test_bad_heat_map_requests_get_a_400_naming_the_field(lesion, coordinator, api_client_for):
    make_heat_maps(lesion, ("CM",))
    client = api_client_for(coordinator)
    response = client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/", {"model_version": "x1"})
    assert response.status_code == 400 and "model_version" in response.json()
    response = client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/XX.dcm")
    assert response.status_code == 400 and "phase" in response.json()
    assert client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/EX.dcm").status_code == 404
    make_heat_maps(lesion, ("CM",))  # a second active model (another variant) with a map on CM
    response = client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/CM.dcm")
    assert response.status_code == 400 and "model_version" in response.json()


@pytest.mark.django_db
def test_a_reader_is_refused_heat_maps_even_of_a_lesion_they_read(
    lesion, reader, coordinator, api_client_for
):
    from annotations.models import ReaderStudy

    make_heat_maps(lesion, ("CM",))
    study = ReaderStudy.objects.create(name="R", seed=1, created_by=coordinator)
    study.cases.create(study=lesion.study, position=1)
    study.readers.add(reader)
    client = api_client_for(reader)
    assert client.get(f"/api/v1/lesions/{lesion.pk}/").status_code == 200
    response = client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/")
    assert response.status_code == 403 and "aided" in response.json()["detail"]
    assert client.get(f"/api/v1/lesions/{lesion.pk}/heat-maps/CM.dcm").status_code == 403


@pytest.mark.django_db
def test_the_dicom_export_is_a_parametric_map_of_the_values_on_the_referenced_image(
    lesion, coordinator, api_client_for
):
    version, (heat_map,) = make_heat_maps(lesion, ("CM",))
    response = api_client_for(coordinator).get(f"/api/v1/lesions/{lesion.pk}/heat-maps/CM.dcm")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    source = datasets.reference_roi(lesion, "CM").series.instances.get(
        sop_instance_uid=heat_map.sop_instance_uid
    )
    derivation = (
        ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    )
    assert derivation.ReferencedSOPInstanceUID == heat_map.sop_instance_uid
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == heat_map.series_instance_uid
    assert ds.FrameOfReferenceUID == pydicom.dcmread(source.file.open("rb")).FrameOfReferenceUID
    parametric_map = hd.pm.ParametricMap.from_dataset(ds)
    pixels = ds.pixel_array
    assert pixels.dtype == np.float32 and pixels.shape == (source.rows, source.columns)
    window = PatchWindow(
        heat_map.window_row, heat_map.window_column, heat_map.window_rows, heat_map.window_columns
    )
    # Outside the patch: 0; inside: the map's values, rising from the window's top-left to its bottom-right.
    assert window.row > 1 and window.column > 1 and pixels[0, 0] == 0.0 and pixels[-1, -1] == 0.0
    top_left = pixels[int(window.row + 1), int(window.column + 1)]
    bottom_right = pixels[
        int(window.row + window.rows - 1), int(window.column + window.columns - 1)
    ]
    assert top_left == pytest.approx(0.0, abs=0.05) and bottom_right == pytest.approx(1.0, abs=0.05)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    groups = ds.SharedFunctionalGroupsSequence[0]
    if "RealWorldValueMappingSequence" not in groups:
        groups = ds.PerFrameFunctionalGroupsSequence[0]
    mapping = groups.RealWorldValueMappingSequence[0]
    assert mapping.LUTLabel == "HEATMAP" and "Grad-CAM" in mapping.LUTExplanation
    assert parametric_map.SOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.django_db
def test_an_admin_lists_heat_maps_in_the_django_admin(lesion, admin_user, client):
    _, (heat_map,) = make_heat_maps(lesion, ("CM",))
    client.force_login(admin_user)
    assert client.get("/admin/inference/heatmap/").status_code == 200
    assert client.get(f"/admin/inference/heatmap/{heat_map.pk}/change/").status_code == 200
