"""Lesions, ROIs, pathology, reader calls and reader studies (blinding)."""
