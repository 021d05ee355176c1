"""The one place that decides what a user may see and do with annotations (blinding).

Rules (DESIGN.md, "Blinding"):

- A reader sees the studies of the reader studies they are assigned to, plus their
  own uploads (``Study.objects.visible_to``); coordinators and admins see all.
- Ground truth (pathology), model scores and other readers' calls of a lesion are
  hidden from a reader until the reader's own current call on that lesion is locked,
  or a reader study of the lesion's study that the reader is assigned to is unblinded.
  In a reader study with an aided session (sequential or crossover) both the reader's
  unaided and aided calls must be locked; the first locked call shows the model's output
  for the aided session (:func:`may_see_model_output`), never the truth.
  Users who may enter pathology (coordinators, admins) always see the truth.
- A reader study's comparison (readers versus models) is seen by those with
  ``view_comparisons``, and by its readers once it is unblinded (:func:`may_see_comparison`).
- A call made by someone who could see the truth at that moment is stored with
  ``blinded=False`` and left out of :func:`analysable_calls` by default.

Views, serializers, exports and the inference app ask these functions; none of
them repeats the rules.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from archive.models import Study
from portal.roles import (
    ANNOTATE_LESIONS,
    ENTER_PATHOLOGY,
    MANAGE_READER_STUDIES,
    RECORD_READER_CALLS,
    VIEW_COMPARISONS,
    can,
)

from .models import Lesion, ReaderCall, ReaderStudy, Session


def manages_reader_studies(user) -> bool:
    """Coordinators and admins: create reader studies, see every call, export."""
    return can(user, MANAGE_READER_STUDIES)


def reader_studies_visible_to(user):
    """Reader studies ``user`` may open: all for managers, else the assigned ones."""
    if not (user and user.is_authenticated):
        return ReaderStudy.objects.none()
    if manages_reader_studies(user):
        return ReaderStudy.objects.all()
    return ReaderStudy.objects.filter(readers=user)


def assigned_studies_rule(user):
    """The archive's study-visibility hook: a reader may open the cases of the reader studies they read."""
    return Q(reader_studies__readers=user)


def studies_visible_to(user):
    """Studies ``user`` may open (the archive's rule)."""
    return Study.objects.visible_to(user)


def lesions_visible_to(user):
    """Lesions of the studies ``user`` may open."""
    return Lesion.objects.filter(study__in=studies_visible_to(user))


def may_annotate(user, study) -> bool:
    """Draw lesions and ROIs on ``study``: capability ``annotate_lesions`` and the study is visible."""
    return can(user, ANNOTATE_LESIONS) and studies_visible_to(user).filter(pk=study.pk).exists()


def may_change_lesion(user, lesion) -> bool:
    """Change or delete a lesion: its creator (while they may annotate the study) or a manager."""
    if not may_annotate(user, lesion.study):
        return False
    return manages_reader_studies(user) or lesion.created_by_id == user.pk


def may_change_roi(user, roi) -> bool:
    """Change or delete an ROI: a reader only their own ROIs; managers any."""
    if not may_annotate(user, roi.lesion.study):
        return False
    return manages_reader_studies(user) or roi.created_by_id == user.pk


def may_enter_pathology(user) -> bool:
    """Enter pathology (ground truth): ``enter_pathology``; such users always see the truth."""
    return can(user, ENTER_PATHOLOGY)


def truth_visible_lesion_ids(user, lesion_ids) -> set:
    """The ids among ``lesion_ids`` whose pathology, model scores and other calls ``user`` may see."""
    lesion_ids = set(lesion_ids)
    if not (user and user.is_authenticated) or not lesion_ids:
        return set()
    if may_enter_pathology(user):
        return lesion_ids
    locked_calls = ReaderCall.objects.filter(
        lesion_id__in=lesion_ids, reader=user, is_current=True, locked_at__isnull=False
    )
    single = locked_calls.filter(reader_study__design=ReaderStudy.Design.UNAIDED).values_list(
        "lesion_id", flat=True
    )
    with_aided = locked_calls.exclude(reader_study__design=ReaderStudy.Design.UNAIDED)
    sessions = {}  # (lesion, reader study) -> sessions locked: both unblind in a study with an aided session
    for lesion_id, reader_study_id, session in with_aided.values_list(
        "lesion_id", "reader_study_id", "session"
    ):
        sessions.setdefault((lesion_id, reader_study_id), set()).add(session)
    locked = set(single) | {
        lesion_id for (lesion_id, _), done in sessions.items() if len(done) == 2
    }
    unblinded = Lesion.objects.filter(
        pk__in=lesion_ids,
        study__reader_study_cases__reader_study__state=ReaderStudy.State.UNBLINDED,
        study__reader_study_cases__reader_study__readers=user,
    ).values_list("pk", flat=True)
    return set(locked) | set(unblinded)


def may_see_truth(user, lesion) -> bool:
    """May ``user`` see ``lesion``'s pathology, model scores and other readers' calls now?"""
    return lesion.pk in truth_visible_lesion_ids(user, [lesion.pk])


may_see_pathology = may_see_truth
may_see_model_scores = may_see_truth
may_see_other_calls = may_see_truth


def may_call(user, reader_study) -> bool:
    """Record calls in ``reader_study``: an assigned reader with ``record_reader_calls``, or a manager."""
    if not can(user, RECORD_READER_CALLS):
        return False
    return manages_reader_studies(user) or reader_study.readers.filter(pk=user.pk).exists()


def may_know_reader_study(user, reader_study) -> bool:
    """Whether ``user`` may learn that ``reader_study`` exists on the comparison pages (else 404):
    those who may see comparisons (``view_comparisons``) and its assigned readers."""
    if not (user and user.is_authenticated):
        return False
    return can(user, VIEW_COMPARISONS) or reader_study.readers.filter(pk=user.pk).exists()


def may_see_comparison(user, reader_study) -> bool:
    """See ``reader_study``'s readers-versus-models comparison: ``view_comparisons`` always
    (coordinators, admins); an assigned reader once the reader study is unblinded, since the
    comparison shows pathology, model scores and every reader's calls."""
    if not (user and user.is_authenticated):
        return False
    if can(user, VIEW_COMPARISONS):
        return True
    return (
        reader_study.state == ReaderStudy.State.UNBLINDED
        and reader_study.readers.filter(pk=user.pk).exists()
    )


def calls_visible_to(user):
    """Calls ``user`` may list: managers all, everyone else only their own."""
    if not (user and user.is_authenticated):
        return ReaderCall.objects.none()
    if manages_reader_studies(user):
        return ReaderCall.objects.all()
    return ReaderCall.objects.filter(reader=user)


def call_would_be_blinded(user, lesion) -> bool:
    """Whether a call ``user`` makes on ``lesion`` now counts as blinded."""
    return not may_see_truth(user, lesion)


def may_see_model_output(user, reader_study, lesion) -> bool:
    """May ``user`` see the model's output for ``lesion`` in ``reader_study``'s aided session?

    Coordinators and admins: yes. A reader only in a reader study with an aided session
    that they are assigned to, for a lesion of its cases, while their aided read is open:
    sequential, once their unaided call is locked; crossover, during an aided-first read
    until the aided call is locked, or after a locked unaided read once the washout has
    passed. Never in the unaided session. (Which model version is shown is the inference
    app's: the one frozen for the study.)
    """
    if not (user and user.is_authenticated) or not lesion_in_reader_study(lesion, reader_study):
        return False
    if manages_reader_studies(user):
        return True
    if not reader_study.aided or not reader_study.readers.filter(pk=user.pk).exists():
        return False
    calls = {
        call.session: call
        for call in ReaderCall.objects.filter(
            reader_study=reader_study,
            lesion=lesion,
            reader=user,
            is_current=True,
            locked_at__isnull=False,
        )
    }
    unaided = calls.get(Session.UNAIDED)
    if reader_study.design == ReaderStudy.Design.SEQUENTIAL:
        return unaided is not None
    if Session.AIDED in calls:  # crossover: the aided read is over
        return False
    if reader_study.first_session(user, lesion.study_id) == Session.AIDED:
        return unaided is None
    return unaided is not None and timezone.now() >= second_read_opens(
        reader_study, unaided.locked_at
    )


def second_read_opens(reader_study, first_locked_at):
    """When a reader's second read of a lesion opens, their first read having been locked at
    ``first_locked_at``: at once (sequential), or ``washout_days`` later (crossover)."""
    if reader_study.design == ReaderStudy.Design.CROSSOVER:
        return first_locked_at + timedelta(days=reader_study.washout_days)
    return first_locked_at


def reading_schedule(user, reader_study, lesions) -> dict:
    """The reading sessions of ``user`` (a reader of ``reader_study``) on each of ``lesions``, for the case page.

    ``{lesion id: {"first_session", "second_session", "washout_days", "second_read_opens",
    "second_read_open"}}``: ``second_read_opens`` is None until the first read is locked;
    ``second_read_open`` says whether the server accepts the second read now (the rule of
    :func:`annotations.calls.record_call` and :func:`may_see_model_output`). Empty for an
    unaided-only study or a user who is not one of its readers.
    """
    lesions = list(lesions)
    if (
        not reader_study.aided
        or not lesions
        or not reader_study.readers.filter(pk=user.pk).exists()
    ):
        return {}
    aided_first = reader_study.aided_first_study_ids(user)
    locked = {
        (lesion_id, session): locked_at
        for lesion_id, session, locked_at in ReaderCall.objects.filter(
            reader_study=reader_study,
            reader=user,
            lesion__in=[lesion.pk for lesion in lesions],
            is_current=True,
            locked_at__isnull=False,
        ).values_list("lesion_id", "session", "locked_at")
    }
    crossover = reader_study.design == ReaderStudy.Design.CROSSOVER
    now = timezone.now()
    schedule = {}
    for lesion in lesions:
        first = Session.AIDED if lesion.study_id in aided_first else Session.UNAIDED
        first_locked_at = locked.get((lesion.pk, first))
        opens = second_read_opens(reader_study, first_locked_at) if first_locked_at else None
        schedule[lesion.pk] = {
            "first_session": first,
            "second_session": Session.UNAIDED if first == Session.AIDED else Session.AIDED,
            "washout_days": reader_study.washout_days if crossover else 0,
            "second_read_opens": opens,
            "second_read_open": opens is not None and now >= opens,
        }
    return schedule


def analysable_calls(reader_study, include_unblinded: bool = False, session: str = Session.UNAIDED):
    """Calls of one reading session that enter the reader-study analysis: current, locked and (by default) blinded."""
    calls = ReaderCall.objects.filter(
        reader_study=reader_study, session=session, is_current=True, locked_at__isnull=False
    )
    if not include_unblinded:
        calls = calls.filter(blinded=True)
    return calls


def reader_study_lesions(reader_study):
    """Lesions of the studies in ``reader_study``."""
    return Lesion.objects.filter(study__reader_study_cases__reader_study=reader_study)


def lesion_in_reader_study(lesion, reader_study) -> bool:
    return reader_study.cases.filter(study_id=lesion.study_id).exists()
