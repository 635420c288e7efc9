"""Fixtures shared by the gm tests: each runs under both backends, with one key pair per module."""

import pytest

from carbon_common import gm
from carbon_common.gm import backend
from carbon_dev.gm_testing import backends


@pytest.fixture(params=backends(), ids=lambda b: b.name)
def active(request, monkeypatch):
    monkeypatch.setattr(backend, "active", request.param)
    return request.param


@pytest.fixture(scope="module")
def keypair():
    return gm.generate_sm2_keypair()
