"""REST API routes of the annotations app (lesions, ROIs, pathology, calls, reader studies)."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from . import api, sr_api

router = DefaultRouter()
router.include_root_view = False
router.register("reader-studies", api.ReaderStudyViewSet, basename="reader-study")
router.register("lesions", api.LesionViewSet, basename="lesion")
router.register("rois", api.ROIViewSet, basename="roi")
router.register("calls", api.ReaderCallViewSet, basename="call")
router.register("sr-imports", sr_api.SRImportViewSet, basename="sr-import")

urlpatterns = [
    path(
        "reader-studies/<int:pk>/export.csv",
        api.ReaderStudyViewSet.as_view({"get": "export"}),
        name="reader-study-export",
    ),
    re_path(
        r"^studies/(?P<study_instance_uid>[0-9.]+)/sr/$",
        sr_api.StudySRView.as_view(),
        name="study-sr",
    ),
    path("", include(router.urls)),
]
