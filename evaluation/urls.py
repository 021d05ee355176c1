"""Pages and downloads of the reader-versus-model comparison."""

from django.urls import path

from . import views

app_name = "evaluation"

urlpatterns = [
    path("reader-studies/<int:pk>/comparison/", views.comparison_page, name="comparison"),
    path(
        "reader-studies/<int:pk>/comparison/status.json",
        views.comparison_status,
        name="comparison-status",
    ),
    path(
        "reader-studies/<int:pk>/comparison/export.csv", views.export_joined_csv, name="export-csv"
    ),
    path(
        "reader-studies/<int:pk>/comparison/long.csv", views.export_long_csv, name="export-long-csv"
    ),
    path("reader-studies/<int:pk>/comparison/imrmc.imrmc", views.export_imrmc, name="export-imrmc"),
    path("reader-studies/<int:pk>/comparison/analysis.json", views.export_json, name="export-json"),
    path("reader-studies/<int:pk>/comparison/roc.png", views.roc_png, name="roc-png"),
    path("reader-studies/<int:pk>/comparison/roc.svg", views.roc_svg, name="roc-svg"),
]
