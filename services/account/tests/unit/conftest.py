"""Fixtures of the fast service-layer tests: one account process over the fake repository."""

import pytest

from account.operations import LedgerOperations
from account.tiers import Tiers

from account_fakes import FakeRepository


@pytest.fixture
def repo():
    return FakeRepository()


@pytest.fixture
def ops(repo):
    """What dependencies.build_ledger builds, over the fake (the pool's chains opened)."""
    ops = LedgerOperations(repo, Tiers())
    ops.pool_account()
    return ops
