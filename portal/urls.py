from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from archive import urls as archive_urls

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    # Pages outside our templates (admin, the browsable API) get the browser's default request.
    path("favicon.ico", RedirectView.as_view(url=static("portal/favicon.svg"), permanent=True)),
    path("", include(archive_urls.page_patterns)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The archive's models were the portal app's until issue 12: old admin bookmarks still work.
    re_path(
        r"^admin/portal/(?P<rest>(?:patient|study|series|instance|upload)/.*)$",
        RedirectView.as_view(url="/admin/archive/%(rest)s", permanent=True, query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include(archive_urls.router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), not inline: allowed by the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("dicomweb/", include(archive_urls.dicomweb_patterns)),
    path("api/v1/", include("annotations.urls")),
    path("", include("annotations.page_urls")),
    path("", include("evaluation.urls")),
    path("api/v1/", include("inference.urls")),
    path("", include("inference.page_urls")),
]
