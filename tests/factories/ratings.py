"""Rating arrays built from the published reference tables (shared/data/reference), for the MRMC tests."""

import pandas as pd


def wide_ratings(frame: pd.DataFrame):
    """A long reference table (treatment, reader, case, rating, truth) as ``(ratings, truth)``,
    indexed ``ratings[treatment, reader, case]``."""
    frame = frame.sort_values(["treatment", "reader", "case"])
    shape = (frame.treatment.nunique(), frame.reader.nunique(), frame.case.nunique())
    truth = frame.drop_duplicates("case").sort_values("case").truth.to_numpy()
    return frame.rating.to_numpy(dtype=float).reshape(shape), truth
