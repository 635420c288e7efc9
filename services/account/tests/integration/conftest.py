import itertools

import pytest

from account.operations import LedgerOperations
from account.repository import Repository
from account.tiers import Tiers

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
    doc = {
        "reduction_id": f"red-{user_pid}-{n}",
        "record_key": f"rec-{user_pid}-{n}",
        "revision": 0,
        "partner_id": "metro-sz",
        "partner_record_id": f"trip-{n}",
        "user_pid": user_pid,
        "consent_id": "consent-1",
        "scenario": scenario,
        "occurred_at": "2026-11-25T02:00:00Z",
        "grams": grams,
        "methodology_id": "metro_ride",
        "methodology_version": "1.0.0",
        "factor_set_id": "cn-transport",
        "factor_set_version": "2026.1",
        "factors": {"baseline_g_per_pkm": "90.1"},
        "inputs": {"distance_km": "12.4"},
        "baseline_g": "1117.24",
        "project_g": "1017.0",
        "caps": list(caps),
        "dedup_key": "",
    }
    doc.update(extra)
    return doc
