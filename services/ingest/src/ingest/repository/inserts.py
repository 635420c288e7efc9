"""The one write every aggregate builds on: an insert that tells "someone else got there first".

FerretDB v1 has no transactions and non-atomic updates, so whatever must hold under concurrency
is an insert with a unique key; losing the race is an answer (Duplicate), not an error.
"""

from carbon_common.mongo import insert_new


class Duplicate(Exception):
    """An insert hit a unique key: someone else got there first."""


def insert_unique(coll, doc) -> None:
    """Insert one document; Duplicate if its unique key is taken (carbon_common.mongo)."""
    if insert_new(coll, [doc]):
        raise Duplicate(f"{coll.name} {doc['_id']}")
