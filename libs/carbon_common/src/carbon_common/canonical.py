"""Canonical JSON: the one text of a document that is hashed, signed and compared.

Sorted keys, no spaces, non-ASCII characters as themselves, UTF-8 bytes. Ledger entries are
chained by the SM3 of this text and exchange batches are SM2-signed over it (the exchange
verifies the same bytes), so its shape must never change.
"""

import json


def canonical_json(value, default=None) -> str:
    """`default`: as json.dumps (e.g. `str` for Decimals); None refuses what JSON cannot hold."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)


def canonical_bytes(value, default=None) -> bytes:
    return canonical_json(value, default).encode("utf-8")
