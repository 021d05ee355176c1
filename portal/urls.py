from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import api, dicomweb, views

router = DefaultRouter()
router.register("uploads", api.UploadViewSet, basename="upload")
router.register("studies", api.StudyViewSet, basename="study")
router.register("series", api.SeriesViewSet, basename="series")
router.register("instances", api.InstanceFileView, basename="instance")

UID = r"(?P<{}>[0-9.]+)"
ST, SE, IN = UID.format("study"), UID.format("series"), UID.format("instance")

dicomweb_patterns = [
    re_path(r"^studies$", dicomweb.StudiesView.as_view()),
    re_path(rf"^studies/{ST}$", dicomweb.StudyView.as_view()),
    re_path(rf"^studies/{ST}/metadata$", dicomweb.MetadataView.as_view()),
    re_path(rf"^studies/{ST}/series$", dicomweb.StudySeriesView.as_view()),
    re_path(rf"^series$", dicomweb.StudySeriesView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}$", dicomweb.RetrieveView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/metadata$", dicomweb.MetadataView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/instances$", dicomweb.SeriesInstancesView.as_view()),
    re_path(rf"^studies/{ST}/series/{SE}/instances/{IN}$", dicomweb.RetrieveView.as_view()),
    re_path(
        rf"^studies/{ST}/series/{SE}/instances/{IN}/metadata$", dicomweb.MetadataView.as_view()
    ),
    re_path(
        rf"^studies/{ST}/series/{SE}/instances/{IN}/frames/(?P<frames>[0-9,]+)$",
        dicomweb.FramesView.as_view(),
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    # Pages outside our templates (admin, the browsable API) get the browser's default request.
    path("favicon.ico", RedirectView.as_view(url=static("portal/favicon.svg"), permanent=True)),
    path("upload/", views.upload, name="upload"),
    re_path(r"^series/(?P<series_instance_uid>[0-9.]+)/phase/$", views.set_phase, name="set-phase"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), not inline: allowed by the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("dicomweb/", include(dicomweb_patterns)),
    path("api/v1/", include("annotations.urls")),
    path("", include("annotations.page_urls")),
    path("", include("evaluation.urls")),
    path("api/v1/", include("inference.urls")),
    path("", include("inference.page_urls")),
]
