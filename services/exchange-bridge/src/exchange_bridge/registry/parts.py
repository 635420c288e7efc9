"""The registry's parts over its own database, and the one a request is served by.

One `Registry` holds the parts (participants, issuance, blocks, records); the app keeps it in
`current_app.extensions["registry"]`, where views reach it through `registry()`.
"""

from flask import current_app

from exchange_bridge.registry.blocks import Ledger
from exchange_bridge.registry.issuance import Issuance
from exchange_bridge.registry.participants import Participants
from exchange_bridge.registry.records import Records
from exchange_bridge.registry.store import Chains, ensure_indexes


class Registry:
    def __init__(self, db, faults, catalogue, keys, admin_token, clock, max_leaves):
        """`keys`: (private key, public key, earlier public keys)."""
        ensure_indexes(db)
        self.db, self.faults, self.catalogue, self.admin_token = db, faults, catalogue, admin_token
        self.chains = Chains(db)
        self.records = Records(db, self.chains, *keys)
        self.ledger = Ledger(db, self.chains, self.records)
        self.participants = Participants(db, clock)
        self.issuance = Issuance(db, self.chains, self.records, self.ledger, self.participants, catalogue, max_leaves)


def registry() -> Registry:
    return current_app.extensions["registry"]
