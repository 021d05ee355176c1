"""CSV export of a reader study: a row per lesion x reader x reading session (no cell a spreadsheet runs as formula)."""

import io

from archive.spreadsheets import FormulaSafeWriter

from .models import ReaderCall, Session

HEADERS = [
    "Patient ID",
    "Study Instance UID",
    "Lesion",
    "Side",
    "Location",
    "Long axis (mm)",
    "Pathology subtype",
    "Pathology malignant",
    "Reader",
    "Call",
    "Probability of malignancy (%)",
    "Subtype guess",
    "Time spent (s)",
    "Locked",
    "Blinded",
    "Simulated",
    "Revision",
    "Session",
]


def _yes_no(value):
    return "" if value is None else ("yes" if value else "no")


def reader_study_rows(reader_study):
    """Rows (lists, in :data:`HEADERS` order) for every lesion of the study x every reader x session.

    Readers are the assigned readers plus anyone else with a current call; a reader
    without a call on a lesion gets a row with the call columns empty. A sequential
    (aided) reader study has an unaided and an aided row per lesion and reader.
    """
    from .access import reader_study_lesions

    lesions = list(
        reader_study_lesions(reader_study)
        .select_related("study__patient", "pathology")
        .order_by("study__patient__patient_id", "study__study_instance_uid", "label")
    )
    calls = {
        (c.lesion_id, c.reader_id, c.session): c
        for c in ReaderCall.objects.filter(
            reader_study=reader_study, is_current=True
        ).select_related("reader")
    }
    readers = {u.pk: u for u in reader_study.readers.all()}
    readers.update({c.reader_id: c.reader for c in calls.values()})
    ordered_readers = sorted(readers.values(), key=lambda u: u.get_username())
    aided = reader_study.aided or any(key[2] != Session.UNAIDED for key in calls)
    sessions = Session.values if aided else [Session.UNAIDED]
    for lesion in lesions:
        pathology = getattr(lesion, "pathology", None)
        for reader, session in ((r, s) for r in ordered_readers for s in sessions):
            call = calls.get((lesion.pk, reader.pk, session))
            yield [
                lesion.study.patient.patient_id,
                lesion.study.study_instance_uid,
                lesion.label,
                lesion.side,
                lesion.location,
                "" if lesion.long_axis_mm is None else lesion.long_axis_mm,
                pathology.subtype if pathology else "",
                _yes_no(pathology.malignant if pathology else None),
                reader.get_username(),
                "" if call is None else ("malignant" if call.malignant else "benign"),
                "" if call is None else call.probability,
                "" if call is None else call.subtype_guess,
                "" if call is None or call.time_spent_s is None else call.time_spent_s,
                "" if call is None else _yes_no(call.locked),
                "" if call is None else _yes_no(call.blinded),
                "" if call is None else _yes_no(call.simulated),
                "" if call is None else call.revision,
                session,
            ]


def reader_study_csv(reader_study) -> str:
    """The export as CSV text with a header line."""
    buffer = io.StringIO()
    writer = FormulaSafeWriter(buffer)
    writer.writerow(HEADERS)
    writer.writerows(reader_study_rows(reader_study))
    return buffer.getvalue()
