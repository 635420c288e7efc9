"""The bank's SM2 key for batch signatures (GM/T 0003, default user id, over canonical JSON)."""

from carbon_common import gm
from carbon_common.canonical import canonical_bytes


class Signer:
    """SM2 key pair of the bank's batches; the public key is checked against the private one."""

    def __init__(self, private_hex: str, public_hex: str, key_id: str = "k1"):
        if gm.public_key_of(private_hex).lower() != public_hex.lower():
            raise SystemExit("BRIDGE_SM2_PUBLIC_KEY is not the public key of BRIDGE_SM2_PRIVATE_KEY")
        self.private_hex, self.public_hex, self.key_id = private_hex, public_hex.lower(), key_id

    def sign(self, document: dict) -> str:
        return gm.sm2_sign(self.private_hex, canonical_bytes(document)).hex()
