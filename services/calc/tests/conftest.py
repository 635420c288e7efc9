"""Shared by the calc unit and integration tests.

pytest puts the folder of this (package-less) conftest on sys.path, so tests in unit/ and
integration/ both import `calc_fakes` from here (the contract test runs the fake beside the
real repository).
"""

import pytest

from carbon_dev.calc_fixtures import MethodologyDir


@pytest.fixture
def publish_grid_correction():
    """publish(files: MethodologyDir): cn_grid_average 2.1, correcting the mistyped north 2023
    factor 0.6361 -> 0.6400 over v2's window. -> the file."""

    def publish(files: MethodologyDir):
        path = files.derive(
            "factor_sets/cn_grid_average.v2.yml",
            "factor_sets/cn_grid_average.v2.1.yml",
            version='"2.1"',
            status="corrected",
            supersedes='"2"',
        )
        path.write_text(path.read_text().replace('north: "0.6361"', 'north: "0.6400"'))
        return path

    return publish
