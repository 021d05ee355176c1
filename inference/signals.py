"""A saved ROI or pathology has the lesion scored again by every active model (after commit)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from annotations.models import ROI, Pathology

from .services import score_changed_lesion


@receiver(post_save, sender=ROI, dispatch_uid="inference_score_roi")
@receiver(post_save, sender=Pathology, dispatch_uid="inference_score_pathology")
def score_saved_lesion(sender, instance, raw=False, **kwargs):
    if raw:  # fixture loading
        return
    score_changed_lesion(instance.lesion_id)
