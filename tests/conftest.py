import pytest

from moleport.paths import shared_path


@pytest.fixture
def ham_dir():
    p = shared_path("data", "ham10000-mel-nv")
    if p is None:
        pytest.skip("../shared/data/ham10000-mel-nv is absent")
    return p


@pytest.fixture
def external_dir():
    p = shared_path("data", "isic-external-dev")
    if p is None:
        pytest.skip("../shared/data/isic-external-dev is absent")
    return p


@pytest.fixture
def weights_dir():
    p = shared_path("weights")
    if p is None:
        pytest.skip("../shared/weights is absent")
    return p
