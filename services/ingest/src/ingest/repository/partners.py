"""Partners and their signing keys (collections `partners`, `keys`).

Both are created by unique inserts (`_id` = partner id, `_id` = key id: key ids are global),
so a registration repeated concurrently stores one of each. The request path reads them by
`_id` only; the admin API lists keys by partner (a scan on FerretDB: admin traffic only).
Updates are only admin state (status, a key's not_after / revoked_at).
"""

from pymongo import ASCENDING

from carbon_common.mongo import create_query_index

from ingest.repository.inserts import insert_unique


class PartnerStore:
    def __init__(self, db):
        self.partners = db["partners"]
        self.keys = db["keys"]

    def create_indexes(self) -> None:
        create_query_index(self.keys, [("partner_id", ASCENDING)], "partner")

    def insert_partner(self, doc) -> None:
        insert_unique(self.partners, doc)

    def get_partner(self, partner_id):
        return self.partners.find_one({"_id": partner_id})

    def partner_ids(self) -> list:
        return [d["_id"] for d in self.partners.find({}, {"_id": 1}).sort("_id", ASCENDING)]

    def set_partner_fields(self, partner_id, fields) -> None:
        self.partners.update_one({"_id": partner_id}, {"$set": fields})

    def insert_key(self, doc) -> None:
        insert_unique(self.keys, doc)

    def get_key(self, key_id):
        return self.keys.find_one({"_id": key_id})

    def partner_keys(self, partner_id):
        return list(self.keys.find({"partner_id": partner_id}).sort("created_at", ASCENDING))

    def set_key_fields(self, key_id, fields) -> None:
        self.keys.update_one({"_id": key_id}, {"$set": fields})
