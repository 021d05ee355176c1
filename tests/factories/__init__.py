"""Builders shared by the test folders (factory_boy factories and scenario builders).

- ``dicom``: CT datasets in memory (no database).
- ``users``: users in a role.
- ``archive``: patients and studies as rows; ``upload_study`` stores real DICOM through ingest.
- ``annotations``: reader studies, lesions, pathology, reader calls; ``roi_values`` for the API.
- ``inference``: model versions, predictions; ``make_heat_maps`` as the worker stores them.
- ``reader_study``: ``build_reader_study``, a whole synthetic reader study for the comparisons.
- ``annotated_archive``: ``build_archive``, studies with a planted lesion for patch extraction.

Test modules import builders from here, never from each other.
"""
