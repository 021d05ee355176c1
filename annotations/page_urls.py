"""HTML pages of the annotations app (worklist, case page, reader-study management)."""
urlpatterns = []
