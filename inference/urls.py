"""REST routes of the inference app (mounted under /api/v1/)."""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from . import aided_api, api

router = DefaultRouter()
router.include_root_view = False
router.register("training-runs", api.TrainingRunViewSet, basename="training-run")
router.register("model-versions", api.ModelVersionViewSet, basename="model-version")
router.register("experiments", api.ExperimentViewSet, basename="experiment")

urlpatterns = [
    path(
        "reader-studies/<int:pk>/model/",
        aided_api.ReaderStudyModelView.as_view(),
        name="reader-study-model",
    ),
    path(
        "reader-studies/<int:pk>/lesions/<int:lesion_pk>/model-output/",
        aided_api.AidedModelOutputView.as_view(),
        name="aided-model-output",
    ),
    path(
        "lesions/<int:lesion_pk>/heat-maps/",
        api.LesionHeatMapsView.as_view(),
        name="lesion-heat-maps",
    ),
    re_path(
        r"^lesions/(?P<lesion_pk>[0-9]+)/heat-maps/(?P<phase>[A-Za-z]{1,10})\.dcm$",
        api.LesionHeatMapDicomView.as_view(),
        name="lesion-heat-map-dicom",
    ),
    *router.urls,
]
