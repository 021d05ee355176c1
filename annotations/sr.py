"""Lesions and ROIs as a DICOM SR Measurement Report (TID 1500), and back.

Export: one measurement group per ROI. Area tools (ellipse, rectangle, freehand)
are TID 1410 planar ROI groups whose image region is a SCOORD3D (ELLIPSE or closed
POLYGON) in patient coordinates; the length tool, which has no area, is a TID 1501
group whose Length measurement references its SCOORD3D POLYLINE. Every group carries
the lesion label as tracking identifier (one tracking UID per lesion), the kidney
with laterality as finding site, the measured values (area or length, mean/SD/min/max
HU as measured, the lesion's long axis), each referencing the source image
(SOPInstanceUID + frame), and two evaluations in a private coding scheme
(:data:`SCHEME`): the drawing tool and whether the ROI is the phase's reference.
The pathology is added as qualitative evaluations only when the requester may see
it: the subtype (concept DCM 111042 "Pathology") as a SNOMED CT concept where one
exists (:data:`SUBTYPE_CODES`), otherwise a private code, and the malignancy
(private concept, values SNOMED CT Malignant / Benign). The private scheme is
declared in the CodingSchemeIdentificationSequence (PS3.3 C.12.1.1.3.1), and the
observer is the requesting user, named ``Family^Given`` (PS3.5 6.2.1.2).

Import reads such an SR back into lesions and ROIs (phase from the referenced
instance's series); SRs from other systems work as long as each group references
an instance of the archive.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
from django.db import transaction
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid
from pydicom.valuerep import PersonName

from archive.models import Instance, Study

from . import access, services
from .errors import Conflict, Invalid, NotAllowed
from .geometry import area_mm2, is_rectangle, length_mm
from .models import ROI, Lesion, Side, Subtype

SCHEME = "99RMPORTAL"
# PS3.16 8.2: a private scheme's designator starts with "99"; the SR declares it.
PRIVATE_SCHEME = CodingSchemeIdentificationItem(
    designator=SCHEME,
    name="Renal mass reader-study portal private codes",
    responsible_organization="Renal mass reader-study portal",
)
TOOL = Code("tool", SCHEME, "Annotation tool")
REFERENCE_ROI = Code("reference-roi", SCHEME, "Reference ROI of its phase")
MALIGNANCY = Code("malignancy", SCHEME, "Malignancy")
PATHOLOGY = codes.DCM.Pathology
# Subtypes with a SNOMED CT concept whose code and meaning were confirmed:
# - 254915003 |Clear cell carcinoma of kidney (disorder)|: UK Renal Registry data
#   dictionary (xsdata enum of its renal diagnosis codes) and the TCGA study mapping
#   (KIRC) of cancersysdb;
# - 702391001 |Renal cell carcinoma|: pydicom's DICOM code dictionary
#   (``codes.SCT.RenalCellCarcinoma``, DICOM CID 639), for an RCC of no listed subtype.
# The others keep their private code (papillary, chromophobe, oncocytoma, fat-poor
# AML, other benign): no code for them was confirmed from two sources.
SUBTYPE_CODES = {
    Subtype.CCRCC: Code("254915003", "SCT", "Clear cell carcinoma of kidney"),
    Subtype.OTHER_RCC: codes.SCT.RenalCellCarcinoma,
}
STAT_CODES = {
    "mean": codes.SCT.Mean,
    "stdDev": codes.SCT.StandardDeviation,
    "min": codes.SCT.Minimum,
    "max": codes.SCT.Maximum,
}
LATERALITY = {Side.LEFT: codes.SCT.Left, Side.RIGHT: codes.SCT.Right}
MANUFACTURER = "Renal mass reader-study portal"


def _tool_code(tool):
    return Code(tool, SCHEME, f"{tool} tool")


def subtype_code(subtype) -> Code:
    """The coded value of a pathology subtype: SNOMED CT where confirmed, else private."""
    return SUBTYPE_CODES.get(subtype) or Code(str(subtype), SCHEME, Subtype(subtype).label)


def observer_name(user) -> PersonName:
    """The user as a DICOM person name ``Family^Given``; ``username^`` when no name is on record.

    The caret keeps a one-component name from reading as the retired free-text form
    (PS3.5 6.2.1.2), which dciodvfy flags.
    """
    family, given = user.last_name.strip(), user.first_name.strip()
    if not (family or given):
        family = user.get_username() or "portal"
    name = PersonName.from_named_components(family_name=family, given_name=given)
    return name if given else PersonName(f"{name}^")


def _lesion_tracking_uid(lesion):
    return generate_uid(entropy_srcs=[lesion.study.study_instance_uid, "lesion", str(lesion.pk)])


def _finding_sites(lesion):
    return [
        hd.sr.FindingSite(
            anatomic_location=codes.SCT.Kidney, laterality=LATERALITY.get(lesion.side)
        )
    ]


def _measurements(lesion, roi, image):
    source = [
        hd.sr.SourceImageForMeasurement.from_source_image(image, referenced_frame_numbers=None)
    ]
    if image.get("NumberOfFrames") and int(image.NumberOfFrames) > 1:
        source = [
            hd.sr.SourceImageForMeasurement(
                image.SOPClassUID, image.SOPInstanceUID, [roi.frame_number]
            )
        ]
    found = []
    if roi.tool == ROI.Tool.LENGTH:
        line = hd.sr.CoordinatesForMeasurement3D(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
            graphic_data=np.array(roi.points, dtype=float),
            frame_of_reference_uid=roi.series.frame_of_reference_uid,
        )
        found.append(
            hd.sr.Measurement(
                name=codes.SCT.Length,
                value=length_mm(roi.points),
                unit=codes.UCUM.Millimeter,
                referenced_images=source,
                referenced_coordinates=[line],
            )
        )
    else:
        area = roi.stats.get("area", area_mm2(roi.tool, roi.points))
        found.append(
            hd.sr.Measurement(
                name=codes.SCT.Area,
                value=float(area),
                unit=codes.UCUM.SquareMillimeter,
                referenced_images=source,
            )
        )
        for key, code in STAT_CODES.items():
            if roi.stats.get(key) is not None:
                found.append(
                    hd.sr.Measurement(
                        name=code,
                        value=float(roi.stats[key]),
                        unit=codes.UCUM.HounsfieldUnit,
                        referenced_images=source,
                    )
                )
    if lesion.long_axis_mm is not None:
        found.append(
            hd.sr.Measurement(
                name=codes.SCT.LongAxis,
                value=float(lesion.long_axis_mm),
                unit=codes.UCUM.Millimeter,
                referenced_images=source,
            )
        )
    return found


def _evaluations(roi, pathology):
    found = [
        hd.sr.QualitativeEvaluation(TOOL, _tool_code(roi.tool)),
        hd.sr.QualitativeEvaluation(
            REFERENCE_ROI, codes.SCT.Yes if roi.is_reference else codes.SCT.No
        ),
    ]
    if pathology is not None:
        found.append(hd.sr.QualitativeEvaluation(PATHOLOGY, subtype_code(pathology.subtype)))
        found.append(
            hd.sr.QualitativeEvaluation(
                MALIGNANCY, codes.SCT.Malignant if pathology.malignant else codes.SCT.Benign
            )
        )
    return found


def _group(lesion, roi, image, pathology):
    if not roi.series.frame_of_reference_uid:
        raise Invalid(
            f"series {roi.series.series_instance_uid} has no FrameOfReferenceUID; "
            "its ROIs cannot be placed in patient coordinates",
            "series",
        )
    common = {
        "tracking_identifier": hd.sr.TrackingIdentifier(
            uid=_lesion_tracking_uid(lesion), identifier=lesion.label
        ),
        "finding_type": codes.SCT.Lesion,
        "finding_sites": _finding_sites(lesion),
        "measurements": _measurements(lesion, roi, image),
        "qualitative_evaluations": _evaluations(roi, pathology),
    }
    if roi.tool == ROI.Tool.LENGTH:
        return hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    points = [list(p) for p in roi.points]
    graphic_type = hd.sr.GraphicTypeValues3D.ELLIPSE
    if roi.tool != ROI.Tool.ELLIPSE:
        graphic_type = hd.sr.GraphicTypeValues3D.POLYGON
        points.append(points[0])
    region = hd.sr.ImageRegion3D(
        graphic_type=graphic_type,
        graphic_data=np.array(points, dtype=float),
        frame_of_reference_uid=roi.series.frame_of_reference_uid,
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=region, **common)


def _read_header(instance):
    with instance.file.open("rb") as handle:
        return pydicom.dcmread(handle, stop_before_pixels=True)


def build_measurement_report(study, user) -> pydicom.Dataset:
    """A Comprehensive 3D SR of ``study``'s lesions and ROIs as ``user`` may see them."""
    lesions = list(
        Lesion.objects.filter(study=study)
        .select_related("study", "pathology")
        .prefetch_related("rois__series")
        .order_by("label")
    )
    visible = access.truth_visible_lesion_ids(user, [lesion.pk for lesion in lesions])
    rois = [
        (lesion, roi) for lesion in lesions for roi in lesion.rois.all().order_by("phase", "id")
    ]
    sop_uids = {roi.sop_instance_uid for _, roi in rois}
    instances = {
        i.sop_instance_uid: i
        for i in Instance.objects.filter(series__study=study, sop_instance_uid__in=sop_uids)
    }
    if not instances:
        first = Instance.objects.filter(series__study=study).first()
        if first is None:
            raise Invalid("the study has no instances to report on", "study")
        instances = {first.sop_instance_uid: first}
    headers = {uid: _read_header(instance) for uid, instance in instances.items()}
    groups = []
    for lesion, roi in rois:
        pathology = getattr(lesion, "pathology", None) if lesion.pk in visible else None
        groups.append(_group(lesion, roi, headers[roi.sop_instance_uid], pathology))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=observer_name(user)
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups or None,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=list(headers.values()),
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=900,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="Renal lesion measurements",
        coding_schemes=[PRIVATE_SCHEME],
    )


# --- import ----------------------------------------------------------------


def _code_value(item):
    return getattr(item, "value", None)


def _parse_group(group, roi_region_points, tool_from_graphic):
    """Plain values of one measurement group (lesion label, side, ROI values)."""
    tool, reference = None, False
    for evaluation in group.get_qualitative_evaluations():
        if evaluation.name == TOOL:
            tool = _code_value(evaluation.value)
        elif evaluation.name == REFERENCE_ROI:
            reference = evaluation.value == codes.SCT.Yes
    side = Side.UNKNOWN
    for site in group.finding_sites:
        if site.laterality == codes.SCT.Left:
            side = Side.LEFT
        elif site.laterality == codes.SCT.Right:
            side = Side.RIGHT
    stats, long_axis, sop_uid, frame = {}, None, None, 1
    for measurement in group.get_measurements():
        for image in measurement.referenced_images:
            sop_uid = sop_uid or image.referenced_sop_instance_uid
            frames = image.referenced_frame_numbers
            if frames:
                frame = int(frames[0])
        if measurement.name == codes.SCT.LongAxis:
            long_axis = float(measurement.value)
        for key, code in STAT_CODES.items():
            if measurement.name == code:
                stats[key] = float(measurement.value)
        if measurement.name == codes.SCT.Area:
            stats["area"] = float(measurement.value)
        if measurement.name == codes.SCT.Length and measurement.referenced_coordinates:
            roi_region_points = measurement.referenced_coordinates[0].value.tolist()
            tool_from_graphic = ROI.Tool.LENGTH
    if roi_region_points is None:
        raise Invalid(
            f"measurement group of {group.tracking_identifier!r} has no image region", "file"
        )
    if sop_uid is None:
        raise Invalid(
            f"measurement group of {group.tracking_identifier!r} references no source image", "file"
        )
    return {
        "label": group.tracking_identifier or "L?",
        "side": side,
        "long_axis_mm": long_axis,
        "roi": {
            "sop_instance_uid": sop_uid,
            "frame_number": frame,
            "tool": tool or tool_from_graphic,
            "points": roi_region_points,
            "stats": stats,
            "is_reference": reference,
        },
    }


def read_measurement_groups(dataset) -> list[dict]:
    """The lesion and ROI values of every measurement group of a TID 1500 SR (no database)."""
    try:
        sr = hd.sr.Comprehensive3DSR.from_dataset(dataset)
    except Exception as error:  # highdicom raises several kinds for a non-conforming SR
        raise Invalid(
            f"not a TID 1500 Measurement Report this portal can read: {error}", "file"
        ) from None
    report = sr.content
    parsed = []
    for group in report.get_planar_roi_measurement_groups():
        region = group.roi
        if region is None or not isinstance(region, hd.sr.ImageRegion3D):
            raise Invalid(
                f"group {group.tracking_identifier!r}: only SCOORD3D image regions are imported",
                "file",
            )
        points = region.value.tolist()
        if region.graphic_type == hd.sr.GraphicTypeValues3D.ELLIPSE:
            guess = ROI.Tool.ELLIPSE
        else:
            if len(points) > 1 and points[0] == points[-1]:
                points = points[:-1]
            guess = ROI.Tool.RECTANGLE if is_rectangle(points) else ROI.Tool.FREEHAND
        parsed.append(_parse_group(group, points, guess))
    for group in report.get_image_measurement_groups():
        parsed.append(_parse_group(group, None, None))
    return parsed


@transaction.atomic
def import_measurement_report(dataset, user, check_access=True) -> list[Lesion]:
    """Create the lesions and ROIs of an SR in its study, all or nothing.

    A lesion label that the study already has is a :class:`Conflict` (nothing is created).
    """
    studies = access.studies_visible_to(user) if check_access else Study.objects.all()
    study = studies.filter(study_instance_uid=str(dataset.get("StudyInstanceUID", ""))).first()
    if study is None:
        # The same answer for a study the user may not open as for one the archive does not hold.
        raise Invalid(
            "the SR's StudyInstanceUID is not a study of the archive that you may open", "file"
        )
    if check_access and not access.may_annotate(user, study):
        raise NotAllowed("you may not annotate the SR's study", "file")
    by_label = {}
    for values in read_measurement_groups(dataset):
        lesion_values = by_label.setdefault(
            values["label"],
            {"side": values["side"], "long_axis_mm": values["long_axis_mm"], "rois": []},
        )
        if lesion_values["long_axis_mm"] is None:
            lesion_values["long_axis_mm"] = values["long_axis_mm"]
        lesion_values["rois"].append(values["roi"])
    existing = set(
        Lesion.objects.filter(study=study, label__in=by_label).values_list("label", flat=True)
    )
    if existing:
        raise Conflict(
            f"the study already has lesion(s) {', '.join(sorted(existing))}; delete them first to re-import"
        )
    created = []
    for label, values in by_label.items():
        lesion = services.create_lesion(
            study, user, label=label, side=values["side"], long_axis_mm=values["long_axis_mm"]
        )
        for roi in values["rois"]:
            instance = (
                Instance.objects.filter(
                    series__study=study, sop_instance_uid=roi["sop_instance_uid"]
                )
                .select_related("series")
                .first()
            )
            if instance is None:
                raise Invalid(
                    f"lesion {label}: SOPInstanceUID {roi['sop_instance_uid']} is not an instance of the study",
                    "file",
                )
            services.create_roi(lesion, user, series=instance.series, **roi)
        created.append(lesion)
    return created
