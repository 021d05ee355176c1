"""REST API of the model registry: training runs (start, progress, cancel) and model versions (activate).

Starting and cancelling training needs ``portal.start_training``, activating a model
``portal.manage_models`` (admins); seeing runs and versions needs one of those or
``portal.view_comparisons`` (coordinators). Readers see nothing here: model scores
would unblind them.
"""
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from portal.api import require

from . import services
from .experiments import EXPERIMENTS
from .models import ModelVersion, TrainingRun
from .serializers import ModelVersionSerializer, StartTrainingSerializer, TrainingRunSerializer

VIEW_CAPABILITIES = ("start_training", "manage_models", "view_comparisons")


def require_view(user):
    if not any(user.has_perm(f"portal.{c}") for c in VIEW_CAPABILITIES):
        raise PermissionDenied("your role may not see training runs and models")


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``POST /api/v1/training-runs/`` starts one (admin; 409 while the variant has a queued or running run,
    400 naming an override out of bounds); GET lists them with progress; ``POST …/cancel/``."""

    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI schema generation: no user
            return TrainingRun.objects.none()
        require_view(self.request.user)
        runs = TrainingRun.objects.select_related("created_by", "model_version")
        if self.request.query_params.get("active"):
            runs = runs.filter(state__in=["queued", "running"])
        return runs

    @extend_schema(request=StartTrainingSerializer, responses={201: TrainingRunSerializer, 409: dict, 503: dict})
    def create(self, request):
        require(request.user, "start_training")
        payload = StartTrainingSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            with transaction.atomic():
                (run,) = services.start_training(request.user, data["experiment"], [data["variant"]], data["overrides"])
        except services.RunAlreadyLive as exc:
            return Response({"detail": str(exc), "run": exc.run.pk}, status=status.HTTP_409_CONFLICT)
        except services.TaskQueueUnavailable as exc:  # the run is saved and sent when Redis is back
            body = {"error": str(exc), "training_run": exc.runs[0].pk}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        require(request.user, "start_training")
        run = services.request_cancel(run, request.user)
        return Response(TrainingRunSerializer(run).data)


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Trained models with their out-of-fold metrics; ``POST …/activate/`` (admin) makes one score new lesions."""

    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI schema generation: no user
            return ModelVersion.objects.none()
        require_view(self.request.user)
        return ModelVersion.objects.select_related("activated_by")

    @extend_schema(request=None, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        version = self.get_object()
        require(request.user, "manage_models")
        services.activate(version, request.user)
        return Response(ModelVersionSerializer(version).data)


class ExperimentViewSet(viewsets.ViewSet):
    """The registered experiments and their variants (what ``POST /training-runs/`` accepts)."""

    @extend_schema(responses=dict)
    def list(self, request):
        require_view(request.user)
        return Response([
            {**e.as_dict(), "variant_names": e.variant_names} for e in EXPERIMENTS.values()
        ])
