"""REST API of the model registry: training runs (start, progress, cancel) and model versions (activate).

Starting and cancelling training needs ``start_training``, activating a model
``manage_models`` (admins); seeing runs and versions needs one of those or
``view_comparisons`` (coordinators): :func:`inference.access.may_see_model_registry`.
Readers see nothing here: model scores would unblind them.
"""

import io

import pydicom
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import lesion_in_reader_study, lesions_visible_to, reader_studies_visible_to
from annotations.audit import audit_export
from annotations.errors import Conflict
from archive.models import Instance
from archive.vocabulary import PHASES
from portal.roles import MANAGE_MODELS, START_TRAINING, require

from . import services
from .access import may_see_heat_maps, may_see_model_registry
from .aided import frozen_model_version
from .aided_api import AnnotationErrorsMixin
from .experiments import EXPERIMENTS
from .heatmaps import PatchWindow
from .models import HeatMap, ModelVersion, PredictionKind, TrainingRun
from .serializers import ModelVersionSerializer, StartTrainingSerializer, TrainingRunSerializer


def require_view(user):
    if not may_see_model_registry(user):
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

    @extend_schema(
        request=StartTrainingSerializer,
        responses={201: TrainingRunSerializer, 409: dict, 503: dict},
    )
    def create(self, request):
        require(request.user, START_TRAINING)
        payload = StartTrainingSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            with transaction.atomic():
                (run,) = services.start_training(
                    request.user, data["experiment"], [data["variant"]], data["overrides"]
                )
        except services.RunAlreadyLive as exc:
            return Response(
                {"detail": str(exc), "run": exc.run.pk}, status=status.HTTP_409_CONFLICT
            )
        except services.TaskQueueUnavailable as exc:  # the run is saved and sent when Redis is back
            body = {"error": str(exc), "training_run": exc.runs[0].pk}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        require(request.user, START_TRAINING)
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
        require(request.user, MANAGE_MODELS)
        services.activate(version, request.user)
        return Response(ModelVersionSerializer(version).data)


class ExperimentViewSet(viewsets.ViewSet):
    """The registered experiments and their variants (what ``POST /training-runs/`` accepts)."""

    @extend_schema(responses=dict)
    def list(self, request):
        require_view(request.user)
        return Response(
            [{**e.as_dict(), "variant_names": e.variant_names} for e in EXPERIMENTS.values()]
        )


# At most this many maps in one answer (one per active model and phase: six variants on four phases fit).
MAX_HEAT_MAPS_PER_RESPONSE = 24


def _whole_number(request, name):
    """The query parameter ``name`` as an id (None when absent; 400 naming it when not a whole number)."""
    raw = request.query_params.get(name)
    if raw is not None and not raw.isdigit():
        raise ValidationError(
            {name: f"must be a {name.replace('_', ' ')} id (a whole number), got {raw[:20]!r}"}
        )
    return None if raw is None else int(raw)


class HeatMapRequest:
    """Whose maps a heat-map request may get: the lesion, and the reader study of an aided session when given.

    404: the user may not open the lesion or the reader study, or the lesion is not one
    of the reader study's; 403: they may not see the lesion's maps
    (``inference.access.may_see_heat_maps``).
    """

    def __init__(self, request, lesion_pk):
        self.request = request
        self.lesion = lesions_visible_to(request.user).filter(pk=lesion_pk).first()
        if self.lesion is None:
            raise NotFound("no such lesion")
        reader_study_pk = _whole_number(request, "reader_study")
        self.reader_study = None
        if reader_study_pk is not None:
            self.reader_study = (
                reader_studies_visible_to(request.user).filter(pk=reader_study_pk).first()
            )
            if self.reader_study is None:
                raise NotFound("no such reader study")
            if not lesion_in_reader_study(self.lesion, self.reader_study):
                raise NotFound(f"lesion {self.lesion.pk} is not a lesion of this reader study")
        if not may_see_heat_maps(request.user, self.lesion, self.reader_study):
            raise PermissionDenied(
                "heat maps are model output: readers see them only in the aided session of a reader study "
                "(give ?reader_study=), after their unaided call on the lesion is locked"
            )

    def heat_maps(self):
        """The lesion's final-model maps: in a reader study, only its frozen model version's; else of
        ``?model_version=`` when given, else of the active models."""
        maps = HeatMap.objects.filter(
            prediction__lesion=self.lesion, prediction__kind=PredictionKind.FINAL
        )
        model_version = _whole_number(self.request, "model_version")
        if self.reader_study is not None:
            frozen = frozen_model_version(self.reader_study)
            if frozen is None:
                raise Conflict(
                    f"no model version is frozen for reader study {self.reader_study.name!r}; "
                    "a coordinator sets one"
                )
            if model_version is not None and model_version != frozen.pk:
                raise ValidationError(
                    {
                        "model_version": f"reader study {self.reader_study.name!r} shows only "
                        f"model version {frozen.pk} ({frozen})"
                    }
                )
            maps = maps.filter(prediction__model_version=frozen)
        elif model_version is not None:
            maps = maps.filter(prediction__model_version_id=model_version)
        else:
            maps = maps.filter(prediction__model_version__is_active=True)
        return maps.select_related("prediction__model_version").order_by(
            "prediction__model_version_id", "phase"
        )


def heat_map_as_dict(heat_map, reader_study=None) -> dict:
    """A heat map with its geometry, method and model, as the API answers it (its DICOM link in ``reader_study``)."""
    version = heat_map.prediction.model_version
    in_study = f"&reader_study={reader_study.pk}" if reader_study is not None else ""
    return {
        "id": heat_map.pk,
        "phase": heat_map.phase,
        "method": heat_map.method,
        "method_name": heat_map.get_method_display(),
        "layer": heat_map.layer,
        "model_version": version.pk,
        "model": str(version),
        "score": heat_map.prediction.score,
        "series_instance_uid": heat_map.series_instance_uid,
        "sop_instance_uid": heat_map.sop_instance_uid,
        "window": {
            "row": heat_map.window_row,
            "column": heat_map.window_column,
            "rows": heat_map.window_rows,
            "columns": heat_map.window_columns,
        },
        "shape": heat_map.shape,
        "values": heat_map.values,
        "dicom": f"/api/v1/lesions/{heat_map.prediction.lesion_id}/heat-maps/{heat_map.phase}.dcm"
        f"?model_version={version.pk}{in_study}",
    }


class LesionHeatMapsView(AnnotationErrorsMixin, APIView):
    """``GET /api/v1/lesions/{id}/heat-maps/``: per model and phase, what drove the model's score.

    Each map is rows of floats in [0, 1] over the image window of the patch the model saw
    (``window`` in image pixel units, the image spanning ``[0, Rows] x [0, Columns]``),
    with the method (Grad-CAM or occlusion) and the model version. ``?model_version=``
    picks a version; by default the active models' maps. ``?reader_study=``: the maps of
    the model version frozen for that reader study's aided session, and no other (409
    when none is frozen). Coordinators and admins always; readers only with
    ``?reader_study=`` when they may see the model's output there
    (``inference.access.may_see_heat_maps``).
    """

    @extend_schema(responses=dict)
    def get(self, request, lesion_pk):
        asked = HeatMapRequest(request, lesion_pk)
        maps = list(asked.heat_maps()[: MAX_HEAT_MAPS_PER_RESPONSE + 1])
        return Response(
            {
                "lesion": asked.lesion.pk,
                "reader_study": asked.reader_study.pk if asked.reader_study else None,
                "heat_maps": [
                    heat_map_as_dict(m, asked.reader_study)
                    for m in maps[:MAX_HEAT_MAPS_PER_RESPONSE]
                ],
                "truncated": len(maps) > MAX_HEAT_MAPS_PER_RESPONSE,
            }
        )


class LesionHeatMapDicomView(AnnotationErrorsMixin, APIView):
    """``GET /api/v1/lesions/{id}/heat-maps/{phase}.dcm``: the phase's heat map as a DICOM Parametric Map.

    ``?model_version=`` is needed when several active models have a map on the phase;
    ``?reader_study=`` as for the maps (a reader in an aided session: the frozen version's map).
    """

    @extend_schema(responses={(200, "application/dicom"): bytes})
    def get(self, request, lesion_pk, phase):
        asked = HeatMapRequest(request, lesion_pk)
        lesion = asked.lesion
        if phase not in PHASES:
            raise ValidationError(
                {"phase": f"unknown phase {phase[:10]!r}; one of {', '.join(PHASES)}"}
            )
        maps = list(asked.heat_maps().filter(phase=phase)[:MAX_HEAT_MAPS_PER_RESPONSE])
        if not maps:
            raise NotFound(f"lesion {lesion.pk} has no heat map on {phase}")
        if len(maps) > 1:
            versions = sorted(m.prediction.model_version_id for m in maps)
            raise ValidationError(
                {
                    "model_version": f"several models have a heat map on {phase}: give one of {versions}"
                }
            )
        heat_map = maps[0]
        instance = Instance.objects.filter(sop_instance_uid=heat_map.sop_instance_uid).first()
        if instance is None:
            raise NotFound("the image the heat map was computed on is no longer in the archive")
        import highdicom as hd

        from .heatmap_dicom import heat_map_parametric_map

        with instance.file.open("rb") as handle:
            source = pydicom.dcmread(io.BytesIO(handle.read()))
        version = heat_map.prediction.model_version
        parametric_map = heat_map_parametric_map(
            source,
            heat_map.values,
            PatchWindow(
                heat_map.window_row,
                heat_map.window_column,
                heat_map.window_rows,
                heat_map.window_columns,
            ),
            series_instance_uid=hd.UID(),
            sop_instance_uid=hd.UID(),
            method=heat_map.get_method_display(),
            model_name=str(version),
            software_version=f"model version {version.pk}",
        )
        out = io.BytesIO()
        parametric_map.save_as(out, enforce_file_format=True)
        filename = f"heat-map-lesion{lesion.pk}-{phase}-model{version.pk}.dcm"
        audit_export(
            request.user,
            heat_map,
            filename,
            lesion=lesion.pk,
            phase=phase,
            model_version=version.pk,
            **({"reader_study": asked.reader_study.pk} if asked.reader_study else {}),
        )
        response = HttpResponse(out.getvalue(), content_type="application/dicom")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
