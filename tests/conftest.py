import pytest

from moleport.paths import shared_path


def _shared_or_skip(*parts: str):
    p = shared_path(*parts)
    if p is None:
        pytest.skip(f"../shared/{'/'.join(parts)} is absent")
    return p


@pytest.fixture
def ham_dir():
    return _shared_or_skip("data", "ham10000-mel-nv")


@pytest.fixture
def external_dir():
    return _shared_or_skip("data", "isic-external-dev")


@pytest.fixture
def weights_dir():
    return _shared_or_skip("weights")
