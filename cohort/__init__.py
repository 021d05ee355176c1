"""The synthetic multiphase renal CT cohort: latents, oracle, simulated readers, DICOM files.

No real renal CT can be shipped, so the demo, the training tests and the benchmarks run on
a generated cohort that looks and behaves like the source study's (159 patients, 168 solid
renal masses <= 4 cm, phases NC/CM/NG/EX, pathology for every lesion, about 20 % benign).

Pipeline (each step a pure function; no Django until the importer):

1. :func:`cohort.latents.sample_cohort` draws the latents of every patient and lesion
   (cheap, no pixels) from the literature figures of :mod:`cohort.figures`, as asked by a
   :class:`cohort.spec.CohortSpec`. Each lesion carries its oracle log-likelihood ratio
   (:mod:`cohort.oracle`), the ceiling for readers and models.
2. :func:`cohort.anatomy.render_volumes` turns one case into four HU volumes (one per
   phase); :func:`cohort.dicom.render_study` wraps them as CT Image Storage datasets.
3. :func:`cohort.files.write_cohort` writes every study plus ``cohort.csv`` and returns the
   rows and paths an importer needs; :mod:`cohort.importer` loads them into the portal with
   the simulated readers' calls of :mod:`cohort.readers`. ``manage.py make_cohort`` does both.
"""
