"""REST API of the annotations app: reader studies, lesions, ROIs, pathology, calls, SR.

Thin views: who may do what is asked of :mod:`annotations.access`, every change goes
through :mod:`annotations.services` (reader calls: :mod:`annotations.calls`), whose
errors become 400/403/409 answers naming the field.
"""

from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from portal.roles import MANAGE_READER_STUDIES, UNBLIND_READER_STUDIES, require

from . import access, services
from .audit import audit_export
from .calls import lock_call, locked_message, record_call, revise_call, update_call
from .errors import AnnotationError, Conflict, Invalid, NotAllowed
from .exports import reader_study_csv
from .models import ROI, Lesion, ReaderCall, ReaderStudy, Session
from .serializers import (
    CallInputSerializer,
    CallValuesSerializer,
    LesionSerializer,
    PathologySerializer,
    ReaderCallSerializer,
    ReaderStudySerializer,
    ROIInputSerializer,
    ROISerializer,
)


class NaNTolerantJSONParser(JSONParser):
    """Parses NaN/Infinity so that the validators reject them naming the field, not as a parse error."""

    strict = False


class AnnotationViewMixin:
    parser_classes = [NaNTolerantJSONParser, FormParser, MultiPartParser]

    def handle_exception(self, exc):
        if isinstance(exc, AnnotationError):
            return Response(exc.as_dict(), status=exc.status_code)
        return super().handle_exception(exc)

    def validated(self, serializer_class, data=None, partial=False):
        payload = serializer_class(
            data=self.request.data if data is None else data, partial=partial
        )
        payload.is_valid(raise_exception=True)
        return payload.validated_data


def _raw(data, validated, names):
    """Values for the services: the raw JSON values where sent (so the services check types), else defaults."""
    return {
        n: data[n] if n in data else validated.get(n) for n in names if n in data or n in validated
    }


# --- reader studies --------------------------------------------------------


class ReaderStudyViewSet(AnnotationViewMixin, viewsets.ModelViewSet):
    """Reader studies; readers see (read-only) the ones they are assigned to."""

    serializer_class = ReaderStudySerializer

    def get_queryset(self):
        return (
            access.reader_studies_visible_to(self.request.user)
            .annotate(
                n_cases=Count("cases", distinct=True),
                n_lesions=Count("cases__study__lesions", distinct=True),
            )
            .prefetch_related("readers")
            .order_by("-created_at", "-id")
        )

    def _require_manager(self):
        require(self.request.user, MANAGE_READER_STUDIES)

    def _save_cases(self, reader_study, studies):
        if studies is None:
            return
        wanted = [s.pk for s in studies]
        reader_study.cases.exclude(study_id__in=wanted).delete()
        existing = {c.study_id: c for c in reader_study.cases.all()}
        for position, study_id in enumerate(wanted, start=1):
            case = existing.get(study_id)
            if case is None:
                reader_study.cases.create(study_id=study_id, position=position)
            elif case.position != position:
                case.position = position
                case.save(update_fields=["position"])

    @transaction.atomic
    def perform_create(self, serializer):
        self._require_manager()
        studies = serializer.validated_data.pop("studies", [])
        reader_study = serializer.save(created_by=self.request.user)
        self._save_cases(reader_study, studies)
        services.audit_reader_study_saved(self.request.user, reader_study, None)

    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        response.data = self.get_serializer(
            self.get_queryset().get(pk=kwargs["pk"])
        ).data  # fresh counts
        return response

    @transaction.atomic
    def perform_update(self, serializer):
        self._require_manager()
        design = serializer.validated_data.get("design")
        if design not in (None, serializer.instance.design) and serializer.instance.calls.exists():
            raise Conflict(
                "the reader study has calls; its design (reading sessions) can no longer change",
                "design",
            )
        before = services.reader_study_snapshot(serializer.instance)
        studies = serializer.validated_data.pop("studies", None)
        reader_study = serializer.save()
        self._save_cases(reader_study, studies)
        services.audit_reader_study_saved(self.request.user, reader_study, before)

    def perform_destroy(self, instance):
        self._require_manager()
        services.delete_reader_study(instance, self.request.user)

    def _set_state(self, capability, new_state):
        reader_study = self.get_object()
        require(self.request.user, capability)
        services.set_reader_study_state(reader_study, self.request.user, new_state)
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=None, responses=ReaderStudySerializer)
    @action(detail=True, methods=["post"])
    def unblind(self, request, pk=None):
        """Unblind: assigned readers now see pathology, model scores and other calls."""
        return self._set_state(UNBLIND_READER_STUDIES, ReaderStudy.State.UNBLINDED)

    @extend_schema(request=None, responses=ReaderStudySerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close for reading (no more calls); can be reopened."""
        return self._set_state(MANAGE_READER_STUDIES, ReaderStudy.State.CLOSED)

    @extend_schema(request=None, responses=ReaderStudySerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Reopen a closed (not an unblinded) reader study."""
        return self._set_state(MANAGE_READER_STUDIES, ReaderStudy.State.OPEN)

    @extend_schema(responses=dict)
    @action(detail=True, methods=["get"])
    def worklist(self, request, pk=None):
        """The requesting reader's cases in their reading order, with progress."""
        reader_study = self.get_object()
        cases = reader_study.cases_for(request.user)
        study_ids = [c.study_id for c in cases]
        lesions = dict(
            Lesion.objects.filter(study_id__in=study_ids)
            .values("study_id")
            .annotate(n=Count("id"))
            .values_list("study_id", "n")
        )
        calls = (
            ReaderCall.objects.filter(
                reader_study=reader_study, reader=request.user, is_current=True
            )
            .values("lesion__study_id", "session")
            .annotate(called=Count("id"), locked=Count("id", filter=Q(locked_at__isnull=False)))
        )
        progress = {(row["lesion__study_id"], row["session"]): row for row in calls}
        aided_first = reader_study.aided_first_study_ids(request.user)
        rows = []
        for position, case in enumerate(cases, start=1):
            # A case is done when its last read is locked: unaided-only, the aided read, or in a
            # crossover the unaided read of a case read aided first.
            last_session = Session.UNAIDED
            if reader_study.aided and case.study_id not in aided_first:
                last_session = Session.AIDED
            done = progress.get((case.study_id, last_session), {})
            uid = case.study.study_instance_uid
            rows.append(
                {
                    "position": position,
                    "study_instance_uid": uid,
                    "patient_id": case.study.patient.patient_id,
                    "n_lesions": lesions.get(case.study_id, 0),
                    "n_called": done.get("called", 0),
                    "n_locked": done.get("locked", 0),
                    "case_url": f"/reading/{reader_study.pk}/{uid}/",
                    "first_session": Session.AIDED
                    if case.study_id in aided_first
                    else Session.UNAIDED,
                }
            )
        totals = {k: sum(r[k] for r in rows) for k in ("n_lesions", "n_called", "n_locked")}
        totals["n_cases"] = len(rows)
        totals["n_cases_done"] = sum(
            1 for r in rows if r["n_lesions"] and r["n_locked"] == r["n_lesions"]
        )
        return Response(
            {
                "reader_study": reader_study.pk,
                "name": reader_study.name,
                "instructions": reader_study.instructions,
                "state": reader_study.state,
                "design": reader_study.design,
                "washout_days": reader_study.washout_days,
                "cases": rows,
                "totals": totals,
            }
        )

    @extend_schema(responses={(200, "text/csv"): str})
    def export(self, request, pk=None):
        """``export.csv``: one row per lesion x reader (coordinators, admins); audited."""
        reader_study = self.get_object()
        require(request.user, MANAGE_READER_STUDIES)
        filename = f"reader-study-{reader_study.pk}.csv"
        response = HttpResponse(
            reader_study_csv(reader_study), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        audit_export(request.user, reader_study, filename)
        return response


# --- lesions ---------------------------------------------------------------

LESION_PARAMETERS = [
    OpenApiParameter("study", str, description="StudyInstanceUID"),
    OpenApiParameter(
        "reader_study",
        int,
        description="only lesions of this reader study's cases; for its readers, "
        "with an aided session, each lesion's ``reading`` (first session, when the second read opens)",
    ),
]


class LesionViewSet(AnnotationViewMixin, viewsets.ModelViewSet):
    """Lesions with their ROIs; pathology only where the requester may see it."""

    serializer_class = LesionSerializer

    def get_queryset(self):
        lesions = access.lesions_visible_to(self.request.user).select_related(
            "study__patient", "created_by", "pathology"
        )
        lesions = lesions.prefetch_related("rois__series", "rois__created_by")
        params = self.request.query_params
        if params.get("study"):
            lesions = lesions.filter(study__study_instance_uid=params["study"])
        if params.get("reader_study"):
            reader_studies = access.reader_studies_visible_to(self.request.user).filter(
                pk=_int_or_none(params["reader_study"])
            )
            lesions = lesions.filter(study__reader_study_cases__reader_study__in=reader_studies)
        return lesions.order_by("study_id", "label", "id")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["reader_study"] = self.request.query_params.get("reader_study")
        return context

    @extend_schema(parameters=LESION_PARAMETERS)
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        visible = access.truth_visible_lesion_ids(request.user, [lesion.pk for lesion in page])
        context = {**self.get_serializer_context(), "truth_visible": visible}
        reader_study = (
            access.reader_studies_visible_to(request.user)
            .filter(pk=_int_or_none(request.query_params.get("reader_study")))
            .first()
        )
        if reader_study is not None:
            context["reading_schedule"] = access.reading_schedule(request.user, reader_study, page)
        data = LesionSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    def create(self, request, *args, **kwargs):
        payload = self.validated(LesionSerializer, data=request.data)
        study = payload["study"]
        if not access.may_annotate(request.user, study):
            raise NotAllowed("you may not annotate this study (not assigned to you)", "study")
        values = _raw(request.data, payload, ["label", "side", "location", "long_axis_mm"])
        lesion = services.create_lesion(study, request.user, **values)
        return Response(self.get_serializer(lesion).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        lesion = self.get_object()
        if not access.may_change_lesion(request.user, lesion):
            raise NotAllowed("only the lesion's author or a coordinator may change it")
        partial = kwargs.get("partial", False)
        payload = self.validated(
            LesionSerializer,
            data={"study": lesion.study.study_instance_uid, **request.data},
            partial=partial,
        )
        if payload.get("study") not in (None, lesion.study):
            raise Invalid("a lesion cannot move to another study", "study")
        values = _raw(request.data, payload, ["label", "side", "location", "long_axis_mm"])
        services.update_lesion(lesion, request.user, **values)
        return Response(self.get_serializer(self.get_queryset().get(pk=lesion.pk)).data)

    def destroy(self, request, *args, **kwargs):
        lesion = self.get_object()
        if not access.may_change_lesion(request.user, lesion):
            raise NotAllowed("only the lesion's author or a coordinator may delete it")
        if not access.manages_reader_studies(request.user):
            if hasattr(lesion, "pathology") or lesion.calls.exclude(reader=request.user).exists():
                raise Conflict(
                    "the lesion has pathology or other readers' calls; ask a coordinator to delete it"
                )
        services.delete_lesion(lesion, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses=PathologySerializer)
    @extend_schema(methods=["PUT"], request=PathologySerializer, responses=PathologySerializer)
    @action(detail=True, methods=["get", "put"])
    def pathology(self, request, pk=None):
        """The lesion's pathology: coordinators/admins write; readers read once unblinded for them."""
        lesion = self.get_object()
        if request.method == "PUT":
            if not access.may_enter_pathology(request.user):
                raise NotAllowed("your role may not enter pathology")
            payload = self.validated(PathologySerializer)
            pathology = services.set_pathology(
                lesion,
                payload["subtype"],
                malignant=request.data.get("malignant"),
                source=payload["source"],
                date=payload.get("date"),
                user=request.user,
            )
            return Response(PathologySerializer(pathology).data)
        if not access.may_see_pathology(request.user, lesion):
            raise NotAllowed(
                "pathology is hidden until your call on this lesion is locked or the reader study is unblinded"
            )
        pathology = getattr(lesion, "pathology", None)
        if pathology is None:
            raise NotFound("no pathology has been entered for this lesion")
        return Response(PathologySerializer(pathology).data)


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- ROIs ------------------------------------------------------------------


class ROIViewSet(AnnotationViewMixin, viewsets.ModelViewSet):
    """ROIs of lesions; a reader changes only their own."""

    serializer_class = ROISerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        rois = ROI.objects.filter(
            lesion__in=access.lesions_visible_to(self.request.user)
        ).select_related("series", "created_by")
        if self.request.query_params.get("lesion"):
            rois = rois.filter(lesion_id=_int_or_none(self.request.query_params["lesion"]))
        return rois.order_by("id")

    @extend_schema(request=ROIInputSerializer, responses={201: ROISerializer})
    def create(self, request, *args, **kwargs):
        payload = self.validated(ROIInputSerializer)
        lesion = (
            access.lesions_visible_to(request.user)
            .filter(pk=payload["lesion"])
            .select_related("study")
            .first()
        )
        if lesion is None:
            raise Invalid(f"no lesion {payload['lesion']} that you may open", "lesion")
        if not access.may_annotate(request.user, lesion.study):
            raise NotAllowed("you may not annotate this study")
        names = [
            "series",
            "sop_instance_uid",
            "frame_number",
            "tool",
            "points",
            "stats",
            "is_reference",
            "phase",
        ]
        roi = services.create_roi(lesion, request.user, **_raw(request.data, payload, names))
        return Response(ROISerializer(roi).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ROIInputSerializer(partial=True), responses=ROISerializer)
    def partial_update(self, request, *args, **kwargs):
        roi = self.get_object()
        if not access.may_change_roi(request.user, roi):
            raise NotAllowed("a reader may change only their own ROIs")
        payload = self.validated(ROIInputSerializer, partial=True)
        names = [
            "lesion",
            "series",
            "sop_instance_uid",
            "frame_number",
            "tool",
            "points",
            "stats",
            "is_reference",
            "phase",
        ]
        services.update_roi(
            roi, request.user, **{n: request.data[n] for n in names if n in payload}
        )
        return Response(ROISerializer(ROI.objects.get(pk=roi.pk)).data)

    def destroy(self, request, *args, **kwargs):
        roi = self.get_object()
        if not access.may_change_roi(request.user, roi):
            raise NotAllowed("a reader may delete only their own ROIs")
        services.delete_roi(roi, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- calls -----------------------------------------------------------------

CALL_VALUES = ["malignant", "probability", "subtype_guess", "time_spent_s"]


class ReaderCallViewSet(
    AnnotationViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Reader calls: a reader sees and changes only their own; coordinators see all."""

    serializer_class = ReaderCallSerializer

    def get_queryset(self):
        calls = access.calls_visible_to(self.request.user).select_related("reader", "changed_by")
        params = self.request.query_params
        if params.get("reader_study"):
            calls = calls.filter(reader_study_id=_int_or_none(params["reader_study"]))
        if params.get("lesion"):
            calls = calls.filter(lesion_id=_int_or_none(params["lesion"]))
        if params.get("session"):
            calls = calls.filter(session=params["session"])
        if self.action == "list" and params.get("all_revisions", "") not in {"1", "true", "yes"}:
            calls = calls.filter(is_current=True)
        return calls.order_by("reader_study_id", "lesion_id", "reader_id", "revision")

    @extend_schema(
        parameters=[
            OpenApiParameter("reader_study", int),
            OpenApiParameter("lesion", int),
            OpenApiParameter("session", str, description="unaided or aided"),
            OpenApiParameter("all_revisions", bool, description="include superseded revisions"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _own_call(self):
        call = self.get_object()
        if call.reader_id != self.request.user.pk:
            raise NotAllowed("only the reader who made a call may change it")
        if not access.may_call(self.request.user, call.reader_study):
            raise NotAllowed("you are not assigned to this reader study")
        return call

    @extend_schema(
        request=CallInputSerializer,
        responses={201: ReaderCallSerializer, 200: ReaderCallSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Save the requester's call (create, or update while unlocked); ``lock`` locks it too.

        ``session`` ``aided`` (sequential reader studies): the call after seeing the model's
        output, accepted once the unaided call on the lesion is locked (else 409).
        """
        payload = self.validated(CallInputSerializer)
        reader_study = (
            access.reader_studies_visible_to(request.user)
            .filter(pk=payload["reader_study"])
            .first()
        )
        if reader_study is None:
            raise NotAllowed("you are not assigned to this reader study", "reader_study")
        if not access.may_call(request.user, reader_study):
            raise NotAllowed(
                "your role may not record reader calls in this reader study", "reader_study"
            )
        lesion = access.lesions_visible_to(request.user).filter(pk=payload["lesion"]).first()
        if lesion is None or not access.lesion_in_reader_study(lesion, reader_study):
            raise Invalid(
                f"lesion {payload['lesion']} is not a lesion of reader study {reader_study.name!r}",
                "lesion",
            )
        session = payload["session"]
        existed = ReaderCall.objects.filter(
            reader_study=reader_study,
            lesion=lesion,
            reader=request.user,
            session=session,
            is_current=True,
        ).exists()
        call = record_call(
            reader_study,
            lesion,
            request.user,
            lock=payload["lock"],
            session=session,
            **_raw(request.data, payload, CALL_VALUES),
        )
        return Response(
            ReaderCallSerializer(call).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(request=CallValuesSerializer(partial=True), responses=ReaderCallSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Autosave an unlocked call; a locked call answers 409 (revise it instead)."""
        call = self._own_call()
        if call.locked:
            raise Conflict(locked_message(call))
        payload = self.validated(CallValuesSerializer, partial=True)
        call = update_call(
            call, request.user, **{n: request.data[n] for n in CALL_VALUES if n in payload}
        )
        return Response(ReaderCallSerializer(call).data)

    @extend_schema(request=None, responses=ReaderCallSerializer)
    @action(detail=True, methods=["post"])
    def lock(self, request, pk=None):
        """Lock the call; afterwards the reader sees the lesion's pathology."""
        call = lock_call(self._own_call(), request.user)
        return Response(ReaderCallSerializer(call).data)

    @extend_schema(
        request=CallValuesSerializer(partial=True), responses={201: ReaderCallSerializer}
    )
    @action(detail=True, methods=["post"])
    def revise(self, request, pk=None):
        """A new (locked) revision of a locked call; the old one is kept, no longer current."""
        call = self._own_call()
        payload = self.validated(CallValuesSerializer, partial=True)
        revision = revise_call(
            call, request.user, **{n: request.data[n] for n in CALL_VALUES if n in payload}
        )
        return Response(ReaderCallSerializer(revision).data, status=status.HTTP_201_CREATED)
