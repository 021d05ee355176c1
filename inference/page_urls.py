"""HTML pages of the inference app."""

from django.urls import path

from . import views

urlpatterns = [path("models/", views.models_page, name="models")]
