"""Transaction records (issue, transfer, retire, cancel), signed by the registry, in one order.

A record is signed once, when its operation is decided: SM2 (GM/T 0003, default user id) by
the registry's key over the canonical JSON of the record without `signature` and `seq`
(and without the storage `_id`). A certificate carries the record; a verifier needs only
GET /v1/public-key. After a rotation of the registry's key, records signed earlier keep their
signature: the earlier public keys stay published there (`previous_public_keys`). The record's
place in the history (`seq`) is allocated afterwards in the `sequence` chain, so the signed bytes
never depend on who won a sequence race.
"""

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.gm.curve import parse_public_key
from carbon_common.mongo import find_by_ids, insert_or_get

RECORD_FORMAT = "carbon-registry-record/1"
UNSIGNED = ("_id", "signature", "seq")
PUBLIC = ("_id",)  # storage fields never shown


def signed_bytes(record: dict) -> bytes:
    return canonical_bytes({k: v for k, v in record.items() if k not in UNSIGNED})


def verify_record(public_key: str, record: dict) -> bool:
    """Whether `record` carries the registry's valid signature (for certificates and audits)."""
    try:
        return gm.sm2_verify(public_key, signed_bytes(record), bytes.fromhex(record["signature"]))
    except (KeyError, ValueError, TypeError):
        return False


def public(record: dict | None) -> dict | None:
    return None if record is None else {k: v for k, v in record.items() if k not in PUBLIC}


def checked_public_keys(keys) -> list[str]:
    """Earlier registry public keys as configured: each 128 hex X||Y on the SM2 curve, once."""
    out = []
    for key in keys:
        try:
            parse_public_key(key)
        except (ValueError, TypeError):
            raise SystemExit(f"REGISTRY_SM2_PREVIOUS_PUBLIC_KEYS: {key[:16]}… is not an SM2 public key (128 hex X||Y)")
        out.append(key.lower())
    return list(dict.fromkeys(out))


class Records:
    def __init__(self, db, chains, private_key: str, public_key: str, previous_public_keys=()):
        if gm.public_key_of(private_key).lower() != public_key.lower():
            raise SystemExit("REGISTRY_SM2_PUBLIC_KEY is not the public key of REGISTRY_SM2_PRIVATE_KEY")
        self.db, self.chains = db, chains
        self.private_key, self.public_key = private_key, public_key.lower()
        self.previous_public_keys = [k for k in checked_public_keys(previous_public_keys) if k != self.public_key]

    def sign(self, body: dict) -> dict:
        body = {"format": RECORD_FORMAT, **body}
        return {**body, "signature": gm.sm2_sign(self.private_key, signed_bytes(body)).hex()}

    def store(self, record: dict) -> dict:
        """Insert the record (first signature wins) -> the stored record."""
        stored, _ = insert_or_get(self.db.records, {**record, "_id": record["op_id"]})
        return stored

    def sequence(self, stored: dict) -> int:
        """The record's place in the history, allocated once (a `seq` marker on the record is
        safe to repeat: the sequence chain's unique op_id allows one place per record)."""
        if "seq" in stored:
            return stored["seq"]
        seq = self.chains.append("sequence", "", {"op_id": stored["op_id"]})
        self.db.records.update_one({"_id": stored["_id"]}, {"$set": {"seq": seq}})
        stored["seq"] = seq
        return seq

    def get(self, op_id: str) -> dict | None:
        return self.db.records.find_one({"_id": op_id})

    def page(self, after: int, limit: int) -> tuple[list[dict], int]:
        """Records at seq after+1 … after+limit, stopping at the chain's end -> (records, next after)."""
        wanted = list(range(after + 1, after + limit + 1))
        links = find_by_ids(self.db.sequence, wanted)
        ops = []
        for seq in wanted:
            if seq not in links:
                break  # the chain has no gaps: nothing exists beyond the first missing link
            ops.append((seq, links[seq]["op_id"]))
        records = find_by_ids(self.db.records, [op for _, op in ops])
        out = [dict(public(records[op]), seq=seq) for seq, op in ops if op in records]
        return out, (ops[-1][0] if ops else after)
