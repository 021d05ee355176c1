"""The smallest training experiment, for the inference tests.

Studies with an annotated lesion come from ``tests.factories.annotated_archive.build_archive``.
"""

import pytest

from tests.factories.inference import TINY_EXPERIMENT


@pytest.fixture
def tiny_experiment():
    return dict(TINY_EXPERIMENT)
