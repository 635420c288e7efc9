import itertools

import pytest

from account.operations import LedgerOperations
from account.repository import Repository
from account.tiers import Tiers
from carbon_dev import payloads

_counter = itertools.count()


@pytest.fixture
def repo(mongo_database):
    repository = Repository(mongo_database("account"))
    repository.ensure_indexes()
    return repository


@pytest.fixture
def ops(repo):
    return LedgerOperations(repo, Tiers("seedling:0,sprout:1000,tree:10000"))


@pytest.fixture
def make_reduction():
    return _reduction


def _reduction(user_pid="pid-alice", grams=100, scenario="metro_ride", caps=(), n=None, **extra):
    n = next(_counter) if n is None else n
    return payloads.reduction(user_pid, n, grams, scenario=scenario, caps=list(caps), **extra)
