"""REST API routes of the annotations app (lesions, ROIs, pathology, calls, reader studies)."""
urlpatterns = []
