"""Who may see a model's heat maps (the one rule; views and exports ask it, none repeats it).

Heat maps show where the model looked, so they are model output: hidden from readers
like the model's score (``annotations.access``). Today coordinators and admins see
them always and readers never; the aided reading sessions extend
:func:`may_see_heat_maps` (a reader in an aided session, once the unaided call is
locked: ``annotations.access.may_see_model_output``), and every caller follows.
"""
from annotations.access import lesions_visible_to, manages_reader_studies


def may_see_heat_maps(user, lesion, reader_study=None) -> bool:
    """May ``user`` see the heat maps of ``lesion`` (in ``reader_study``'s aided session, when given)?

    Coordinators and admins: yes, for any lesion they may open. Readers: not yet (no
    aided session grants it).
    """
    if not (user and user.is_authenticated):
        return False
    return manages_reader_studies(user) and lesions_visible_to(user).filter(pk=lesion.pk).exists()
