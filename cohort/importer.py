"""Load a synthetic cohort (``cohort.files.write_cohort``) into the portal.

Studies go through the same ingest path as any upload; each lesion gets its
reference ROIs (a circle on the slice through its centre, per phase, whose mean,
SD, min, max and area are measured on the stored slice as the viewer measures an
ROI drawn there: :mod:`annotations.measurements`) and its pathology from the
generator's ground truth; a reader study holds every imported case. With
``simulate_readers=K`` (demo only), K simulated readers record locked calls that
follow the generator's documented noise model around the oracle
(:func:`cohort.readers.simulate_reader_calls`); every such call is marked
``simulated``. In a sequential reader study, once a model has scored the lesions,
:func:`record_simulated_aided_calls` adds the same readers' aided calls
(:func:`cohort.readers.simulate_aided_reader_calls`: each reader's rating moves toward
the model's score by a weight of their own), also marked ``simulated``.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from annotations import services
from annotations.calls import record_call
from annotations.errors import AnnotationError
from annotations.measurements import measure_roi
from annotations.models import Lesion, Pathology, ReaderCall, ReaderStudy, ReaderStudyCase, Session
from archive.ingest import ingest_upload
from archive.models import Instance, Study, Upload
from cohort.files import circle_points
from cohort.readers import simulate_aided_reader_calls, simulate_reader_calls
from portal.roles import READER

SIDES = {"L": "left", "R": "right"}


class CohortImportError(Exception):
    """A study of the cohort could not be imported (the message names the study and why)."""


@dataclass
class ImportSummary:
    studies_stored: int = 0
    studies_already_there: int = 0
    lesions_created: int = 0
    simulated_calls: int = 0
    reader_study: ReaderStudy | None = None
    simulated_readers: list = field(default_factory=list)


def _ingest_study(study_files, user):
    files = []
    for series in study_files.series.values():
        for path in series.paths:
            files.append(
                (f"{study_files.patient_id}/{series.phase}/{path.name}", path.read_bytes())
            )
    report = ingest_upload(files, user, channel=Upload.Channel.COMMAND)
    if report.status == "rejected":
        reasons = "; ".join(
            f"{f.file}: {f.reason}" for f in report.files if f.status == "rejected"
        )[:500]
        raise CohortImportError(f"study of {study_files.patient_id} was refused: {reasons}")
    return report.status


def _measured_stats(roi, points):
    """The ROI's statistics from the stored slice, as the viewer measures an ellipse drawn there."""
    instance = Instance.objects.get(
        series__series_instance_uid=roi.SeriesInstanceUID, sop_instance_uid=roi.SOPInstanceUID
    )
    return measure_roi(
        "ellipse",
        points,
        instance.pixels_hu(),
        instance.image_position_patient,
        instance.image_orientation_patient,
        instance.pixel_spacing,
    ).as_stats()


def _create_lesion(study, truth, user):
    label = truth.lesion.lesion_id.rsplit("-", 1)[-1]
    existing = Lesion.objects.filter(study=study, label=label).first()
    if existing is not None:
        return existing, False
    rois = {}
    for phase, roi in truth.rois.items():
        points = circle_points(roi.x_mm, roi.y_mm, roi.z_mm, roi.radius_mm)
        rois[phase] = {
            "series": roi.SeriesInstanceUID,
            "sop_instance_uid": roi.SOPInstanceUID,
            "tool": "ellipse",
            "points": points,
            "stats": _measured_stats(roi, points),
        }
    lesion = services.create_lesion_with_reference_rois(
        study,
        label,
        SIDES.get(truth.lesion.side, "unknown"),
        round(truth.lesion.size_mm, 1),
        rois,
        user,
    )
    services.set_pathology(
        lesion, truth.lesion.subtype, source=Pathology.Source.SYNTHETIC, user=user
    )
    return lesion, True


def _simulated_reader(number):
    user, created = get_user_model().objects.get_or_create(
        username=f"simulated-reader-{number}",
        defaults={"first_name": "Simulated", "last_name": f"reader {number}"},
    )
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=READER))
    return user


def _check_design(reader_study_name, design, simulate_readers):
    if design is None:
        return
    if design not in ReaderStudy.Design.values:
        raise CohortImportError(
            f"design must be one of {', '.join(ReaderStudy.Design.values)}, not {design!r}"
        )
    if simulate_readers and design == ReaderStudy.Design.CROSSOVER:
        raise CohortImportError(
            "simulated readers read every case unaided first: choose the unaided or the "
            "sequential design"
        )
    existing = ReaderStudy.objects.filter(name=reader_study_name).exclude(design=design).first()
    if existing is not None:
        raise CohortImportError(
            f"reader study {reader_study_name!r} already exists with design {existing.design}, "
            f"not {design}"
        )


def import_cohort(
    cohort_files,
    user,
    reader_study_name,
    readers=(),
    simulate_readers=0,
    seed=0,
    progress=None,
    design=None,
):
    """Import ``cohort_files`` (a :class:`cohort.files.CohortFiles`) as ``user``.

    Creates (or extends) the reader study ``reader_study_name`` with every imported
    case and ``readers`` (users) assigned; a new reader study gets ``design`` (a
    :class:`ReaderStudy.Design` value; default unaided), an existing one must already
    have it. Simulated readers read unaided first, so they need the unaided or
    sequential design. Idempotent: studies already stored are duplicates, lesions
    already there are kept, simulated calls are recorded once. Every check is made
    before anything is stored (:class:`CohortImportError`).
    """
    _check_design(reader_study_name, design, simulate_readers)
    summary = ImportSummary()
    studies = cohort_files.studies if progress is None else progress(cohort_files.studies)
    for study_files in studies:
        status = _ingest_study(study_files, user)
        if status == "stored":
            summary.studies_stored += 1
        else:
            summary.studies_already_there += 1

    with transaction.atomic():
        reader_study, _ = ReaderStudy.objects.get_or_create(
            name=reader_study_name,
            defaults={
                "instructions": "Synthetic demo cohort: for every lesion, call benign or malignant and give "
                "your probability of malignancy (0-100).",
                "seed": seed,
                "created_by": user,
                "design": design or ReaderStudy.Design.UNAIDED,
            },
        )
        summary.reader_study = reader_study
        study_rows = {
            s.study_instance_uid: s
            for s in Study.objects.filter(
                study_instance_uid__in=[f.StudyInstanceUID for f in cohort_files.studies]
            )
        }
        position = reader_study.cases.count()
        for study_files in cohort_files.studies:
            study = study_rows[study_files.StudyInstanceUID]
            _, created = ReaderStudyCase.objects.get_or_create(
                reader_study=reader_study, study=study, defaults={"position": position}
            )
            position += created
        lesions_by_id = {}
        for truth in cohort_files.truths:
            lesion, created = _create_lesion(study_rows[truth.StudyInstanceUID], truth, user)
            summary.lesions_created += created
            lesions_by_id[truth.lesion.lesion_id] = lesion
        reader_study.readers.add(*readers)

        if simulate_readers:
            simulated = [_simulated_reader(k + 1) for k in range(simulate_readers)]
            reader_study.readers.add(*simulated)
            summary.simulated_readers = simulated
            already = set(
                ReaderCall.objects.filter(
                    reader_study=reader_study, simulated=True, is_current=True
                ).values_list("reader_id", "lesion_id")
            )
            for call in simulate_reader_calls(
                [t.lesion for t in cohort_files.truths], simulate_readers, seed
            ):
                reader, lesion = simulated[call.reader], lesions_by_id[call.lesion_id]
                if (reader.pk, lesion.pk) in already:
                    continue
                record_call(
                    reader_study,
                    lesion,
                    reader,
                    malignant=call.malignant_call,
                    probability=int(round(call.probability)),
                    simulated=True,
                    lock=True,
                    blinded=True,
                    changed_by=user,
                )
                summary.simulated_calls += 1
    return summary


def cohort_lesions(reader_study) -> dict:
    """The reader study's lesions by the generator's lesion id (``<PatientID>-<label>``, e.g. ``SRM-0001-L1``)."""
    lesions = Lesion.objects.filter(
        study__reader_study_cases__reader_study=reader_study
    ).select_related("study__patient")
    return {f"{lesion.study.patient.patient_id}-{lesion.label}": lesion for lesion in lesions}


def record_simulated_aided_calls(
    reader_study, lesions, k, seed, model_scores, changed_by=None
) -> int:
    """Record the aided calls of the ``k`` simulated readers of a sequential reader study (demo only).

    ``lesions`` are the generator's lesions (:class:`cohort.latents.LesionLatents`) the reader
    study was imported from, in import order, with the import's ``k`` and ``seed``;
    ``model_scores`` maps each lesion id to the probability of malignancy (0-1) the
    aided session shows for it. Each reader's aided call follows
    :func:`cohort.readers.simulate_aided_reader_calls` (the reader's rating moves toward
    the model's score by the reader's weight) and is locked after their locked unaided
    call, blinded and marked ``simulated``. Idempotent: aided calls already there are
    kept. Returns the number of calls recorded. :class:`CohortImportError`, with
    nothing recorded, when the study is not sequential, a lesion or score is missing,
    or the stored unaided calls are not those these lesions, ``k`` and ``seed`` give.
    """
    if reader_study.design != ReaderStudy.Design.SEQUENTIAL:
        raise CohortImportError(
            f"reader study {reader_study.name!r} has design {reader_study.design}; simulated "
            "aided calls need the sequential design"
        )
    rows = cohort_lesions(reader_study)
    missing = [lesion.lesion_id for lesion in lesions if lesion.lesion_id not in rows]
    if missing:
        raise CohortImportError(
            f"lesion(s) {', '.join(missing[:5])} are not in reader study {reader_study.name!r}"
        )
    unscored = [lesion.lesion_id for lesion in lesions if lesion.lesion_id not in model_scores]
    if unscored:
        raise CohortImportError(f"no model score for lesion(s) {', '.join(unscored[:5])}")
    try:
        reading = simulate_aided_reader_calls(
            lesions, k, seed, [model_scores[lesion.lesion_id] for lesion in lesions]
        )
    except ValueError as error:
        raise CohortImportError(str(error)) from None
    names = [f"simulated-reader-{number + 1}" for number in range(k)]
    by_name = {user.username: user for user in get_user_model().objects.filter(username__in=names)}
    absent = [name for name in names if name not in by_name]
    if absent:
        raise CohortImportError(
            f"no simulated reader(s) {', '.join(absent)}: import the cohort with "
            f"--simulate-readers {k} first"
        )
    readers = [by_name[name] for name in names]
    calls = ReaderCall.objects.filter(
        reader_study=reader_study, reader__in=readers, simulated=True, is_current=True
    )
    unaided = {
        (reader_pk, lesion_pk): probability
        for reader_pk, lesion_pk, probability in calls.filter(
            session=Session.UNAIDED, locked_at__isnull=False
        ).values_list("reader_id", "lesion_id", "probability")
    }
    aided = set(calls.filter(session=Session.AIDED).values_list("reader_id", "lesion_id"))
    for call in reading.unaided:
        key = (readers[call.reader].pk, rows[call.lesion_id].pk)
        if unaided.get(key) != int(round(call.probability)):
            raise CohortImportError(
                f"{readers[call.reader].username}'s locked unaided call on {call.lesion_id} is not the simulated one "
                f"of this cohort (seed {seed}, {k} readers): no aided calls recorded"
            )
    recorded = 0
    try:
        with transaction.atomic():
            for call in reading.aided:
                reader, lesion = readers[call.reader], rows[call.lesion_id]
                if (reader.pk, lesion.pk) in aided:
                    continue
                record_call(
                    reader_study,
                    lesion,
                    reader,
                    malignant=call.malignant_call,
                    probability=int(round(call.probability)),
                    simulated=True,
                    lock=True,
                    blinded=True,
                    changed_by=changed_by,
                    session=Session.AIDED,
                )
                recorded += 1
    except AnnotationError as error:
        raise CohortImportError(f"simulated aided calls not recorded: {error}") from None
    return recorded
