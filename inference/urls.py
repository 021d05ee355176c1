"""REST routes of the inference app (mounted under /api/v1/)."""
from django.urls import path
from rest_framework.routers import DefaultRouter

from . import aided_api, api

router = DefaultRouter()
router.include_root_view = False
router.register("training-runs", api.TrainingRunViewSet, basename="training-run")
router.register("model-versions", api.ModelVersionViewSet, basename="model-version")
router.register("experiments", api.ExperimentViewSet, basename="experiment")

urlpatterns = [
    path("reader-studies/<int:pk>/model/", aided_api.ReaderStudyModelView.as_view(), name="reader-study-model"),
    path("reader-studies/<int:pk>/lesions/<int:lesion_pk>/model-output/", aided_api.AidedModelOutputView.as_view(),
         name="aided-model-output"),
    *router.urls,
]
