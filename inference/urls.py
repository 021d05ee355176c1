"""REST routes of the inference app (mounted under /api/v1/)."""
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.include_root_view = False
router.register("training-runs", api.TrainingRunViewSet, basename="training-run")
router.register("model-versions", api.ModelVersionViewSet, basename="model-version")
router.register("experiments", api.ExperimentViewSet, basename="experiment")

urlpatterns = router.urls
