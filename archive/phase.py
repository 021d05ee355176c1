"""Contrast-phase classification: which phase (NC, CM, NG, EX) each CT series of a study shows.

Framework-free. The phase is inferred from the series' DICOM timing attributes
(AcquisitionTime against ContrastBolusStartTime), else from a SeriesDescription
keyword, else from the acquisition order of the study's contrast-enhanced series;
:func:`classify_phase` states the rules and every call carries the reason that decided it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .dicomfiles import InstanceAttributes, parse_time_seconds, text_value
from .vocabulary import PHASES, UNKNOWN_PHASE

NC, CM, NG, EX = PHASES
UNKNOWN = UNKNOWN_PHASE

# Delay after the start of the contrast injection, seconds, from
# shared/data/renal_ct_physiology.md ("Phase timing after IV contrast injection"):
# corticomedullary 25-70 s, nephrographic 80-180 s, excretory 3-10 min. The
# excretory window is kept open to 15 min for late urographic acquisitions.
# A delay in a gap (0-25 s, 70-80 s) goes to the nearest window, unless the
# SeriesDescription names one of the two neighbours.
PHASE_WINDOWS_S = {CM: (25.0, 70.0), NG: (80.0, 180.0), EX: (180.0, 900.0)}

_KEYWORDS = {
    NC: r"non[- ]?contrast|non[- ]?enhanced|unenhanced|native|nativ|plain|nc|pre|pre[- ]?contrast"
    r"|w/?o contrast|without contrast",
    CM: r"arterial|cortico\w*|cm|corticomedullary",
    NG: r"nephro\w*|portal|venous|pv|ng|parenchymal",
    EX: r"excret\w*|delay\w*|urogra\w*|ex|pyelo\w*",
}
_KEYWORD_PATTERNS = {
    phase: re.compile(rf"(?<![a-z0-9])(?:{words})(?![a-z0-9])", re.IGNORECASE)
    for phase, words in _KEYWORDS.items()
}


@dataclass(frozen=True)
class SeriesTiming:
    """What the phase of one series is inferred from (one entry per series).

    Times are DICOM TM strings ("HHMMSS.FFFFFF", also "HH:MM:SS") or
    :class:`datetime.time`.
    """

    SeriesInstanceUID: str
    AcquisitionTime: str | datetime.time | None = None
    ContrastBolusAgent: str | None = None
    ContrastBolusStartTime: str | datetime.time | None = None
    SeriesDescription: str | None = None
    SeriesNumber: int | None = None

    @classmethod
    def from_attributes(cls, attributes: InstanceAttributes) -> SeriesTiming:
        """The timing of the series that ``attributes`` (one of its instances) belongs to."""
        return cls(
            SeriesInstanceUID=attributes.SeriesInstanceUID,
            AcquisitionTime=attributes.AcquisitionTime,
            ContrastBolusAgent=attributes.ContrastBolusAgent,
            ContrastBolusStartTime=attributes.ContrastBolusStartTime,
            SeriesDescription=attributes.SeriesDescription,
            SeriesNumber=attributes.SeriesNumber,
        )


def series_timings(instances: Iterable[InstanceAttributes]) -> list[SeriesTiming]:
    """One :class:`SeriesTiming` per series of ``instances``, with the series' earliest AcquisitionTime."""
    by_series: dict[str, SeriesTiming] = {}
    for attributes in instances:
        timing = SeriesTiming.from_attributes(attributes)
        earlier = by_series.get(timing.SeriesInstanceUID)
        if earlier is None:
            by_series[timing.SeriesInstanceUID] = timing
            continue
        old, new = (
            parse_time_seconds(earlier.AcquisitionTime),
            parse_time_seconds(timing.AcquisitionTime),
        )
        if new is not None and (old is None or new < old):
            by_series[timing.SeriesInstanceUID] = timing
    return list(by_series.values())


class PhaseCall(NamedTuple):
    """A phase ("NC", "CM", "NG", "EX" or "unknown") and what decided it."""

    phase: str
    reason: str


def _signed_delay(acquisition: float, start: float) -> float:
    """Acquisition minus injection start, wrapped across midnight to the nearest 12 h."""
    delay = acquisition - start
    if delay < -43200:
        delay += 86400
    elif delay > 43200:
        delay -= 86400
    return delay


def description_hint(description: str | None) -> str | None:
    """The phase that SeriesDescription names, or None when it names none or several."""
    if not description:
        return None
    found = {phase for phase, pattern in _KEYWORD_PATTERNS.items() if pattern.search(description)}
    return found.pop() if len(found) == 1 else None


def _phase_from_delay(delay: float, hint: str | None) -> PhaseCall:
    text = f"delay {delay:.0f} s after ContrastBolusStartTime"
    if delay < 0:
        return PhaseCall(NC, f"acquired {-delay:.0f} s before ContrastBolusStartTime")
    for phase, (low, high) in PHASE_WINDOWS_S.items():
        if low <= delay < high or (phase == EX and delay == high):
            return PhaseCall(phase, text)
    if delay > PHASE_WINDOWS_S[EX][1]:
        if hint == EX:
            return PhaseCall(EX, f"{text} (beyond 15 min; SeriesDescription says excretory)")
        return PhaseCall(
            UNKNOWN, f"{text} is beyond every phase window (CM 25-70 s, NG 80-180 s, EX 3-15 min)"
        )
    if delay < PHASE_WINDOWS_S[CM][0]:
        return PhaseCall(CM, f"{text} (before the 25-70 s window; nearest is CM)")
    low_edge, high_edge = PHASE_WINDOWS_S[CM][1], PHASE_WINDOWS_S[NG][0]
    if hint in (CM, NG):
        return PhaseCall(hint, f"{text} (between the CM and NG windows; SeriesDescription decides)")
    nearest = CM if delay - low_edge < high_edge - delay else NG
    return PhaseCall(nearest, f"{text} (between the CM and NG windows; nearest is {nearest})")


_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


def classify_phase(series: list[SeriesTiming]) -> dict[str, PhaseCall]:
    """The contrast phase of each series of ONE study, keyed by SeriesInstanceUID.

    Rules, in order:

    1. No ContrastBolusAgent, no ContrastBolusStartTime and no contrast keyword in
       SeriesDescription: NC.
    2. AcquisitionTime and ContrastBolusStartTime both known: delay = acquisition
       minus start (wrapped across midnight to within +-12 h). Negative: NC;
       25-70 s CM, 80-180 s NG, 180 s-15 min EX (:data:`PHASE_WINDOWS_S`); gaps go
       to the nearest window, with SeriesDescription breaking the 70-80 s gap.
    3. Otherwise a SeriesDescription keyword (arterial/cortico/CM, nephro/portal/
       venous/NG, excretory/delayed/urography/EX, non-contrast/unenhanced/native/
       plain/NC/pre) decides.
    4. Otherwise the remaining contrast series are put in acquisition order
       (AcquisitionTime, then SeriesNumber): the 1st acquisition is CM, the 2nd NG,
       later ones EX. Series acquired at the same time (reconstructions of one
       acquisition) share a phase. Without either, the phase is "unknown".

    Returns :class:`PhaseCall` ``(phase, reason)`` tuples; the reason says which
    rule decided.
    """
    calls: dict[str, PhaseCall] = {}
    ordered: list[tuple[SeriesTiming, float | None]] = []
    for timing in series:
        uid = timing.SeriesInstanceUID
        if uid in calls or any(t.SeriesInstanceUID == uid for t, _ in ordered):
            continue
        hint = description_hint(timing.SeriesDescription)
        agent = text_value(timing.ContrastBolusAgent)
        acquisition = parse_time_seconds(timing.AcquisitionTime)
        start = parse_time_seconds(timing.ContrastBolusStartTime)
        if agent is None and start is None and hint in (None, NC):
            reason = "no ContrastBolusAgent"
            if hint == NC:
                reason += "; SeriesDescription says unenhanced"
            calls[uid] = PhaseCall(NC, reason)
        elif acquisition is not None and start is not None:
            calls[uid] = _phase_from_delay(_signed_delay(acquisition, start), hint)
        elif hint is not None:
            source = "ContrastBolusAgent present" if agent else "no ContrastBolusAgent"
            calls[uid] = PhaseCall(
                hint, f"SeriesDescription keyword ({source}, no ContrastBolusStartTime)"
            )
        else:
            ordered.append((timing, acquisition))
    calls.update(_phases_by_order(ordered))
    return calls


def _phases_by_order(ordered: list[tuple[SeriesTiming, float | None]]) -> dict[str, PhaseCall]:
    calls: dict[str, PhaseCall] = {}
    timed = [(t, s) for t, s in ordered if s is not None]
    numbered = [t for t, s in ordered if s is None and t.SeriesNumber is not None]
    unordered = [t for t, s in ordered if s is None and t.SeriesNumber is None]
    if timed and (numbered or unordered):
        # Mixed evidence cannot be put in one order: the untimed series stay unknown.
        unordered += numbered
        numbered = []
    if timed:
        groups: list[list[SeriesTiming]] = []
        last = None
        for timing, seconds in sorted(timed, key=lambda ts: (ts[1], ts[0].SeriesNumber or 0)):
            if last is None or seconds - last > 1.0:
                groups.append([])
            groups[-1].append(timing)
            last = seconds
        key = "AcquisitionTime"
    else:
        groups = [[t] for t in sorted(numbered, key=lambda t: t.SeriesNumber or 0)]
        key = "SeriesNumber"
    for index, group in enumerate(groups, start=1):
        phase = {1: CM, 2: NG}.get(index, EX)
        ordinal = _ORDINALS.get(index, f"{index}th")
        reason = f"{ordinal} contrast-enhanced acquisition of the study by {key} (no ContrastBolusStartTime)"
        for timing in group:
            calls[timing.SeriesInstanceUID] = PhaseCall(phase, reason)
    for timing in unordered:
        calls[timing.SeriesInstanceUID] = PhaseCall(
            UNKNOWN,
            "contrast-enhanced, but no ContrastBolusStartTime, AcquisitionTime or phase keyword",
        )
    return calls
