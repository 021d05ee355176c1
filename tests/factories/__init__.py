"""Builders shared by the test folders (factory_boy factories and scenario builders).

- ``dicom``: CT datasets in memory (no database).
- ``users``: users in a role.
- ``scenarios``: the study A/B fixtures (a pytest plugin that ``tests/conftest.py`` loads).
- ``archive``: patients and studies as rows; ``upload_study`` stores real DICOM through ingest.
- ``annotations``: reader studies, lesions, pathology, reader calls; ``roi_values`` for the API;
  ``unlabelled_copy`` of a lesion.
- ``inference``: model versions, predictions, experiment files; heat maps as the worker stores
  them; ``tiny_model_version`` (an untrained CNN on disk).
- ``reader_study``: ``build_reader_study``, a whole synthetic reader study for the comparisons.
- ``annotated_archive``: ``build_archive``, studies with a planted lesion for patch extraction.
- ``ratings``: ``wide_ratings``, a published reference table as a ratings array.

Test modules import builders from here, never from each other.
"""
