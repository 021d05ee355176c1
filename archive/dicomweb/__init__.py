"""DICOMweb (DICOM PS3.18) over the archive: QIDO-RS, WADO-RS and STOW-RS.

Responses follow the standard exactly because real clients (``dicomweb-client``,
OHIF, Cornerstone's WADO-RS loader) parse them strictly. One module per part of it:

- :mod:`.qido`: searching (QIDO-RS), query parsing and matching;
- :mod:`.wado`: retrieval of instances, frames and metadata (WADO-RS);
- :mod:`.stow`: storing (STOW-RS) through the one ingest path;
- :mod:`.dicom_json`: the DICOM JSON model and bulk data URIs;
- :mod:`.multipart`: multipart/related bodies, read and written in chunks;
- :mod:`.base`: the view every DICOMweb view derives from.

Authentication and permissions are those of the REST API (session or token);
a user finds and retrieves only the studies they may see.
"""
