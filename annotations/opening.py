"""The slice at which each phase of the case viewer opens.

A case opens where the reader has to look: at the selected lesion (the first of the
case's lesions, as the lesion panel selects it) on every phase.

- A phase on which that lesion has a reference ROI (on the series the viewer shows for
  the phase) opens at the ROI's slice.
- A phase without one opens at the same anatomical level: the slice whose position
  (ImagePositionPatient along the slice normal) is nearest to that of the reference ROI
  of the first phase, in the order NC, CM, NG, EX, that has one — where the synchronized
  slice position would take it — provided both series share the FrameOfReferenceUID.
- Otherwise (no lesion, no reference ROI, another frame of reference, no positions) the
  phase opens at its middle slice, ``len(instances) // 2`` of the stack sorted by slice
  position.

Framework-free: plain values in, ``{phase: SOPInstanceUID}`` out.
"""

from __future__ import annotations

from typing import NamedTuple

from archive.vocabulary import PHASES


class Slice(NamedTuple):
    """One instance of a stack: its SOPInstanceUID and slice position (mm, None when unknown)."""

    sop_instance_uid: str
    slice_position: float | None


class Stack(NamedTuple):
    """The series shown for one phase: its FrameOfReferenceUID and its slices sorted by position."""

    frame_of_reference_uid: str
    slices: tuple[Slice, ...]


def opening_slices(stacks: dict[str, Stack], references: dict[str, str]) -> dict[str, str]:
    """SOPInstanceUID of the opening slice of each phase in ``stacks``.

    ``references`` maps a phase to the SOPInstanceUID of the selected lesion's reference
    ROI on that phase's stack; an ROI on an instance that is not in the stack is ignored.
    Phases with an empty stack are left out.
    """
    anchors = {
        phase: sop
        for phase, sop in references.items()
        if phase in stacks and any(s.sop_instance_uid == sop for s in stacks[phase].slices)
    }
    anchor_phase = next((phase for phase in PHASES if phase in anchors), None)
    anchor = None
    if anchor_phase is not None:
        position = next(
            s.slice_position
            for s in stacks[anchor_phase].slices
            if s.sop_instance_uid == anchors[anchor_phase]
        )
        anchor = (stacks[anchor_phase].frame_of_reference_uid, position)

    opening = {}
    for phase, stack in stacks.items():
        if not stack.slices:
            continue
        if phase in anchors:
            opening[phase] = anchors[phase]
        elif (
            anchor
            and anchor[1] is not None
            and stack.frame_of_reference_uid
            and stack.frame_of_reference_uid == anchor[0]
        ):
            opening[phase] = _nearest(stack.slices, anchor[1])
        else:
            opening[phase] = stack.slices[len(stack.slices) // 2].sop_instance_uid
    return opening


def _nearest(slices: tuple[Slice, ...], position: float) -> str:
    """The slice nearest to ``position``; ties go to the first in stack order; the middle one
    when no slice has a position."""
    placed = [s for s in slices if s.slice_position is not None]
    if not placed:
        return slices[len(slices) // 2].sop_instance_uid
    return min(placed, key=lambda s: abs(s.slice_position - position)).sop_instance_uid
