"""REST API of aided reading: the model version a reader study shows, and its output for a lesion.

``/api/v1/reader-studies/{id}/model/`` (GET: whoever may open the reader study; PUT:
coordinators and admins) and ``/api/v1/reader-studies/{id}/lesions/{lesion}/model-output/``
(who may see it: :func:`annotations.access.may_see_model_output`). The rules live in
annotations.access, the freezing in :mod:`inference.aided`.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import access
from annotations.errors import AnnotationError
from portal.roles import MANAGE_READER_STUDIES, require

from . import aided
from .serializers import FreezeModelSerializer


def _reader_study_or_404(user, pk):
    reader_study = access.reader_studies_visible_to(user).filter(pk=pk).first()
    if reader_study is None:
        raise NotFound("no such reader study")
    return reader_study


class AnnotationErrorsMixin:
    def handle_exception(self, exc):
        if isinstance(exc, AnnotationError):
            return Response(exc.as_dict(), status=exc.status_code)
        return super().handle_exception(exc)


class ReaderStudyModelView(AnnotationErrorsMixin, APIView):
    """``/api/v1/reader-studies/{id}/model/``: the model version frozen for the aided session.

    GET: whoever may open the reader study (``{"model_version": null}`` when none is frozen);
    PUT ``{"model_version": id}``: coordinators and admins (audited; 409 once aided readers
    saw another version).
    """

    @extend_schema(responses=dict)
    def get(self, request, pk):
        reader_study = _reader_study_or_404(request.user, pk)
        version = aided.frozen_model_version(reader_study)
        return Response(
            {
                "reader_study": reader_study.pk,
                "design": reader_study.design,
                "model_version": aided.model_version_dict(version) if version else None,
            }
        )

    @extend_schema(request=FreezeModelSerializer, responses=dict)
    def put(self, request, pk):
        reader_study = _reader_study_or_404(request.user, pk)
        require(request.user, MANAGE_READER_STUDIES)
        payload = FreezeModelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = aided.freeze_model_version(
            reader_study, payload.validated_data["model_version"], request.user
        )
        return Response(
            {
                "reader_study": reader_study.pk,
                "design": reader_study.design,
                "model_version": aided.model_version_dict(version),
            }
        )


class AidedModelOutputView(AnnotationErrorsMixin, APIView):
    """``GET /api/v1/reader-studies/{id}/lesions/{lesion}/model-output/``: the frozen model's
    probability of malignancy for the lesion, with the model version named.

    A reader sees it only in a sequential reader study, for a lesion of it, once their
    unaided call on it is locked (``annotations.access.may_see_model_output``; else 403);
    coordinators and admins always. 409 when no model is frozen, 404 when it has not scored the lesion.
    """

    @extend_schema(responses=dict)
    def get(self, request, pk, lesion_pk):
        reader_study = _reader_study_or_404(request.user, pk)
        lesion = access.reader_study_lesions(reader_study).filter(pk=lesion_pk).first()
        if lesion is None:
            raise NotFound(f"lesion {lesion_pk} is not a lesion of this reader study")
        if not access.may_see_model_output(request.user, reader_study, lesion):
            raise PermissionDenied(
                "the model's output is shown only in the aided session of a sequential reader study, "
                "after your unaided call on this lesion is locked"
            )
        try:
            return Response(aided.aided_model_output(reader_study, lesion))
        except LookupError as exc:
            raise NotFound(str(exc)) from None
