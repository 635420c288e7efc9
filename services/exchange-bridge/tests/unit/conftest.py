"""Each service's tests/unit has a `fakes` module imported by its plain name (test folders are
not packages, and several may be collected in one run, in any order): while a test module of
this folder is imported, `fakes` is this folder's; afterwards it is left to the next folder."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collectstart(collector):
    if isinstance(collector, pytest.Module):
        sys.modules.pop("fakes", None)
        sys.path.insert(0, str(HERE))


def pytest_collectreport(report):
    sys.modules.pop("fakes", None)
    while str(HERE) in sys.path:
        sys.path.remove(str(HERE))
