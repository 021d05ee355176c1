"""The models page: admins start and watch training runs and activate model versions."""

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from portal.roles import START_TRAINING, permission

from .experiments import EXPERIMENTS


@login_required
@permission_required(permission(START_TRAINING), raise_exception=True)
def models_page(request):
    experiments = [
        {
            "name": e.name,
            "family": e.family,
            "variants": e.variant_names,
            "epochs": e.epochs,
            "folds": e.folds,
            "builder": e.model_builder,
            "description": e.description,
        }
        for e in EXPERIMENTS.values()
    ]
    return render(request, "inference/models.html", {"experiments": experiments})
