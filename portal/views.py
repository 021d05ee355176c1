"""HTML pages of the archive: home, upload, studies."""
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from .models import Study, Upload


@login_required
def home(request):
    studies = (
        Study.objects.visible_to(request.user).select_related("patient").prefetch_related("series").order_by("-created_at")[:200]
    )
    return render(request, "portal/home.html", {"studies": studies})


@login_required
@permission_required("portal.upload_studies", raise_exception=True)
def upload(request):
    uploads = Upload.objects.filter(user=request.user)[:20]
    return render(request, "portal/upload.html", {"uploads": uploads})
