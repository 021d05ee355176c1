"""URLs of the archive: its REST API (under api/v1/), DICOMweb (under dicomweb/), the upload page."""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from . import api, views
from .dicomweb import qido, wado

router = DefaultRouter()
router.register("uploads", api.UploadViewSet, basename="upload")
router.register("studies", api.StudyViewSet, basename="study")
router.register("series", api.SeriesViewSet, basename="series")
router.register("instances", api.InstanceFileView, basename="instance")

UID = r"(?P<{}>[0-9.]+)"
ST, SE, IN = UID.format("study"), UID.format("series"), UID.format("instance")

dicomweb_patterns = [
    re_path(r"^studies$", qido.StudiesView.as_view()),
    re_path(rf"^studies/{ST}$", wado.StudyView.as_view()),
    re_path(rf"^studies/{ST}/metadata$", wado.MetadataView.as_view()),
    re_path(rf"^studies/{ST}/series$", qido.StudySeriesView.as_view()),
    re_path(r"^series$", qido.StudySeriesView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}$", wado.RetrieveView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/metadata$", wado.MetadataView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/instances$", qido.SeriesInstancesView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/instances/{IN}$", wado.RetrieveView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/instances/{IN}/metadata$", wado.MetadataView.as_view()),
    re_path(
        rf"^studies/{ST}/series/{SE}/instances/{IN}/frames/(?P<frames>[0-9,]+)$",
        wado.FramesView.as_view(),
    ),
]

page_patterns = [
    path("upload/", views.upload, name="upload"),
    re_path(r"^series/(?P<series_instance_uid>[0-9.]+)/phase/$", views.set_phase, name="set-phase"),
]
