"""HTML pages of the annotations app (worklist, case page, study viewer)."""

from django.urls import path, re_path

from . import views

UID = r"(?P<study_instance_uid>[0-9.]+)"

urlpatterns = [
    path("reading/", views.reading, name="reading"),
    path("reading/<int:reader_study_id>/", views.worklist, name="worklist"),
    re_path(rf"^reading/(?P<reader_study_id>[0-9]+)/{UID}/$", views.case, name="case"),
    re_path(rf"^studies/{UID}/$", views.study_viewer, name="study-viewer"),
]
