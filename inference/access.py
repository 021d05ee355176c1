"""Who may see the model registry and a model's heat maps (the rules; views and exports ask them).

The registry (training runs, model versions and their metrics) is seen by those who train
or manage models and by those who see comparisons (coordinators); readers see nothing of
it, since model scores would unblind them.

Heat maps show where the model looked, so they are model output: hidden from readers
like the model's score (``annotations.access``). Coordinators and admins see them
always; a reader exactly when they may see the model's output in a reader study's
aided session (``annotations.access.may_see_model_output``: sequential, once their
unaided call on the lesion is locked), and then only the maps of the model version
frozen for that reader study (``inference.aided.frozen_model_version``; the API
serves no other). Never in the unaided session, never without a reader study.
"""

from annotations.access import lesions_visible_to, manages_reader_studies, may_see_model_output
from portal.roles import MANAGE_MODELS, START_TRAINING, VIEW_COMPARISONS, can


def may_see_model_registry(user) -> bool:
    """May ``user`` list training runs and model versions? ``start_training``, ``manage_models``
    or ``view_comparisons`` (admins, coordinators); readers not."""
    return any(can(user, c) for c in (START_TRAINING, MANAGE_MODELS, VIEW_COMPARISONS))


def may_see_heat_maps(user, lesion, reader_study=None) -> bool:
    """May ``user`` see the heat maps of ``lesion`` (in ``reader_study``'s aided session, when given)?

    Coordinators and admins: yes, for any lesion they may open. Readers: only with a
    reader study in whose aided session they may see the model's output for the lesion.
    """
    if not (user and user.is_authenticated):
        return False
    if manages_reader_studies(user):
        return lesions_visible_to(user).filter(pk=lesion.pk).exists()
    return reader_study is not None and may_see_model_output(user, reader_study, lesion)
