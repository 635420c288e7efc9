"""The rewards catalogue, a module of the account service with collections of its own
(docs/catalogue.md; ADR 0005 for the settlement it relies on).

  items.py       the pure domain: versions, claim ids, periods, availability, refusals
  store.py       the catalogue's collections (the only catalogue module that touches the store)
  claims.py      exact stock and per-customer limits: slot claims by unique insert, the rule
                 that frees a failed or crashed attempt's slots
  catalogue.py   `Catalogue`: items and their versions, offers, redeeming, partner fulfilment
                 (reports, expiry, announcements)
  statement.py   the catalogue lines of a monthly statement
  provider.py    building one Catalogue per process (gRPC server, nameko service)
"""
