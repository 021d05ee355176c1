"""The generated files pass the portal's own reader, de-identification check and phase classifier.

Those modules are written by others and framework-free; the test skips while they are missing.
"""

import pytest

from archive.vocabulary import PHASES

dicomfiles = pytest.importorskip("archive.dicomfiles")
phase_classifier = pytest.importorskip("archive.phase")
deid = pytest.importorskip("archive.deid")


def test_portal_reads_accepts_and_classifies_every_series_without_series_description(small_cohort):
    for study in small_cohort.studies:
        timings, truth = [], {}
        for phase in PHASES:
            path = study.series[phase].paths[0]
            ds = dicomfiles.read_instance(path.read_bytes(), path.name)
            assert deid.check_deidentified(ds) == []
            # The basic de-identification profile removes SeriesDescription: classify without it.
            timings.append(
                phase_classifier.SeriesTiming(
                    ds.SeriesInstanceUID,
                    ds.AcquisitionTime,
                    ds.get("ContrastBolusAgent"),
                    ds.get("ContrastBolusStartTime"),
                    None,
                    ds.SeriesNumber,
                )
            )
            truth[ds.SeriesInstanceUID] = phase
        calls = phase_classifier.classify_phase(timings)
        assert {uid: call.phase for uid, call in calls.items()} == truth
