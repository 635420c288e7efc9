import pytest

from calc.loader import load_catalog
from carbon_dev.calc_fixtures import MethodologyDir


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture
def methodology_dir(tmp_path):
    return MethodologyDir(tmp_path / "methodologies")


@pytest.fixture(scope="session")
def corrected_catalog(tmp_path_factory):
    """Packaged files plus a metro correction (1.1, same window), a later metro v2, a withdrawn
    walking v2 and a corrected grid factor set 2.1 (same window as 2)."""
    d = MethodologyDir(tmp_path_factory.mktemp("corrected") / "m")
    d.derive("metro_ride.v1.yml", "metro_ride.v1.yml", effective_to='"2027-01-01T00:00:00+08:00"')
    d.derive("metro_ride.v1.yml", "metro_ride.v1.1.yml", version='"1.1"', status="corrected", supersedes='"1"')
    d.derive(
        "metro_ride.v1.yml",
        "metro_ride.v2.yml",
        version='"2"',
        effective_from='"2027-01-01T00:00:00+08:00"',
        effective_to="null",
    )
    d.derive("walking.v1.yml", "walking.v1.yml", effective_to='"2026-06-01T00:00:00+08:00"')
    d.derive(
        "walking.v1.yml",
        "walking.v2.yml",
        version='"2"',
        status="withdrawn",
        effective_from='"2026-06-01T00:00:00+08:00"',
        effective_to="null",
    )
    d.derive(
        "factor_sets/cn_grid_average.v2.yml",
        "factor_sets/cn_grid_average.v2.1.yml",
        version='"2.1"',
        status="corrected",
        supersedes='"2"',
    )
    return d.catalog()
