import pytest

from datahelpers import image_folder


@pytest.fixture
def tiny_folder(tmp_path):
    """An ImageFolder dataset of 6 melanoma + 8 nevus small PNGs."""
    return image_folder(tmp_path / "ds")
