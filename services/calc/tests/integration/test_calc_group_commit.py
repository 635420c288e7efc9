"""Group commit against the real store keeps insert_one's answer per document."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from calc.group_commit import GroupCommit


def test_concurrent_inserts_and_duplicates_each_get_their_own_answer(calc_db):
    writer = GroupCommit(calc_db["outcomes"])
    ids = [f"id-{i % 40}" for i in range(60)]  # 20 ids arrive twice
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _id: (_id, writer.insert({"_id": _id, "v": 1})), ids))
    inserted = [i for i, ok in answers if ok]
    assert sorted(inserted) == sorted(set(ids))  # each id inserted exactly once
    assert calc_db["outcomes"].count_documents({}) == 40


def test_a_failing_store_fails_the_waiting_worker():
    from pymongo import MongoClient
    dead = MongoClient("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200")["x"]["outcomes"]
    with pytest.raises(Exception):
        GroupCommit(dead).insert({"_id": "a"})
