"""The only package that touches MongoDB (the service's own database, default carbon_ingest).

FerretDB v1 has no transactions and non-atomic updates, so every concurrency-relevant write is
an insert with a unique key: receipts (_id = record key, unique partner_id+partner_record_id),
nonces (_id = partner:nonce), rate-limit slots (_id = partner:window:slot), consents
(_id = consent id), consent index slots (_id = partner:user_pid:n), consent revocations
(_id = consent id); partners, keys and deletion requests are created the same way (_id =
partner id, key id, user_pid). Updates are only used for admin state and idempotent state flips.

FerretDB v1 answers only `_id` lookups from an index (single value or `$in`); any other filter
reads the whole collection. So every query a signed request sends is an `_id` lookup
(tests/integration/test_ingest_hot_path_queries.py proves it); scans are left to the admin API,
deletion requests and the relay's timer work on small collections.

One module per aggregate, each with the collections it alone writes:

    partners.py        partners, keys
    request_guards.py  nonces, rate_slots                        (replay and rate limit)
    consents.py        consents, consent_index, consent_revocations, meta, deletions
    slot_cache.py      the consent index slots a process keeps in memory (the only cache)
    receipts.py        receipts, unpublished (relay hints), published (legacy markers)
    inserts.py         Duplicate and the unique insert they all build on
    facade.py          Repository: all of them as one object; indexes, readiness ping
"""

from ingest.repository.consents import CONSENT_INDEX_READY, consent_slot_id
from ingest.repository.facade import Repository
from ingest.repository.inserts import Duplicate

__all__ = ["CONSENT_INDEX_READY", "Duplicate", "Repository", "consent_slot_id"]
