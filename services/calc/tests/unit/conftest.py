import pytest

from calc.loader import load_catalog
from calc.testing import MethodologyDir


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture
def methodology_dir(tmp_path):
    return MethodologyDir(tmp_path / "methodologies")
