"""Retirement certificates (docs/certificate.md) for the verifier's tests, and the doc's test vector.

They are PRODUCED with the platform's own code, as the bank and the registry would: carbon_common
for SM2/SM3 and canonical JSON, and the registry's own record builders
(exchange_bridge.registry: `Issuance._issue_body`, `Ledger._choose`/`_body`), so a record here has
exactly the members and values the registry signs (carbon-registry-record/1). The verifier under
test (tools/certificate-verifier) shares none of it. `sample_certificate` draws fresh keys;
`doc_vector` uses fixed keys and fixed signing nonces so that every byte of it can be published
and reproduced. A fixed nonce is only ever acceptable with throwaway keys like these.
"""

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from carbon_common.canonical import canonical_bytes
from carbon_common.gm import generate_sm2_keypair, public_key_of, sm2_sign, sm3_hex
from carbon_common.gm.curve import N
from exchange_bridge.registry.blocks import Ledger
from exchange_bridge.registry.issuance import Issuance
from exchange_bridge.registry.records import RECORD_FORMAT

CERTIFICATE_FORMAT = "carbon-retirement-certificate/2"
BATCH_FORMAT = "carbon-reduction-batch/1"
GRAMS_PER_UNIT = 1_000_000
CST = timezone(timedelta(hours=8))
HOLDER = "bank-a"  # the bank's participant (holder account) at the registry


@dataclass(frozen=True)
class Keys:
    bank_private: str
    bank_public: str
    registry_private: str
    registry_public: str


def new_keys() -> Keys:
    bank_private, bank_public = generate_sm2_keypair()
    registry_private, registry_public = generate_sm2_keypair()
    return Keys(bank_private, bank_public, registry_private, registry_public)


def fixed_keys() -> Keys:
    """The doc's throwaway keys: private key = SM3 of a label (reduced into [1, n-1])."""

    def private(label: str) -> str:
        return f"{int(sm3_hex(label.encode()), 16) % (N - 1) + 1:064x}"

    bank_private = private("carbon-retirement-certificate/1 test vector: bank key")
    registry_private = private("carbon-retirement-certificate/1 test vector: registry key")
    return Keys(bank_private, public_key_of(bank_private), registry_private, public_key_of(registry_private))


# ---- the bank's arithmetic (docs/certificate.md §3) ------------------------------------------


def leaf_hash(leaf: dict) -> str:
    return sm3_hex(b"leaf:" + canonical_bytes(leaf))


def node_hash(left: str, right: str) -> str:
    return sm3_hex(f"node:{left}{right}".encode("ascii"))


def merkle_levels(hashes: list[str]) -> list[list[str]]:
    """Level 0 = the hashes sorted ascending; an odd last node is promoted unchanged."""
    levels = [sorted(hashes)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        levels.append(
            [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        )
    return levels


def merkle_root(hashes: list[str]) -> str:
    return merkle_levels(hashes)[-1][0]


def merkle_proof(hashes: list[str], target: str) -> list[dict]:
    levels = merkle_levels(hashes)
    at = levels[0].index(target)
    proof = []
    for level in levels[:-1]:
        sibling = at - 1 if at % 2 else at + 1
        if sibling < len(level):
            proof.append({"side": "left" if at % 2 else "right", "hash": level[sibling]})
        at //= 2
    return proof


def consent_root(leaves: list[dict], consent_ids: dict[str, str]) -> str:
    return merkle_root(
        [sm3_hex(f"consent:{leaf['reduction_id']}:{consent_ids[leaf['reduction_id']]}".encode()) for leaf in leaves]
    )


def vintage_of(occurred_at: str) -> int:
    """The calendar year of occurred_at in China Standard Time (ADR 0005 §2)."""
    return datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).astimezone(CST).year


def make_leaf(
    reduction_id, grams, owner_pid, occurred_at, methodology=("metro-ride", "1.0.0"), factor_set=("cn-grid", "2026.1")
):
    return {
        "reduction_id": reduction_id,
        "grams": grams,
        "owner_pid": owner_pid,
        "methodology_id": methodology[0],
        "methodology_version": methodology[1],
        "factor_set_id": factor_set[0],
        "factor_set_version": factor_set[1],
        "vintage": vintage_of(occurred_at),
        "occurred_at": occurred_at,
    }


def serial(methodology_id: str, version: str, vintage: int, start: int, end: int) -> str:
    """A block's name `CN-PCA-<METHODOLOGY>-V<version>-<vintage>-<start>-<end>` (docs/registry-api.md §5)."""
    return f"CN-PCA-{methodology_id.upper().replace('_', '-')}-V{version}-{vintage}-{start:09d}-{end:09d}"


def key_fingerprint(public_key: str) -> str:
    """SM3 of the public key's 64 bytes X||Y (docs/certificate.md §2)."""
    return sm3_hex(bytes.fromhex(public_key))


def certificate_digest(certificate: dict) -> str:
    """SM3 of the certificate's canonical JSON: what its PDF prints (docs/certificate.md §2)."""
    return sm3_hex(canonical_bytes(certificate))


# ---- signing --------------------------------------------------------------------------------


class Signer:
    """SM2 over canonical_json(document): CSPRNG nonces, or (doc vector) a fixed nonce per label."""

    def __init__(self, keys: Keys, fixed_nonces: bool = False):
        self.keys = keys
        self.fixed = fixed_nonces

    def _sign(self, private: str, document: dict, label: str) -> str:
        message = canonical_bytes(document)
        if not self.fixed:
            return sm2_sign(private, message).hex()
        from carbon_dev.gm_testing import sm2_sign_with_k

        return sm2_sign_with_k(private, message, nonce_for(label)).hex()

    def bank(self, document: dict, label: str = "") -> str:
        return self._sign(self.keys.bank_private, document, "bank " + label)

    def registry(self, document: dict, label: str = "") -> str:
        return self._sign(self.keys.registry_private, document, "registry " + label)


def nonce_for(label: str) -> str:
    """A distinct fixed nonce per signed document (never one k for two messages)."""
    return f"{int(sm3_hex(('carbon-retirement-certificate/2 test vector nonce: ' + label).encode()), 16) % (N - 1) + 1:064x}"


# ---- batches and certificates ------------------------------------------------------------------


def issue_record(batch: dict, first_serial: int, at: str, group_position: int = 1, holder: str = HOLDER) -> dict:
    """The registry's issue record of `batch` (unsigned members), as `Issuance.finish` makes it."""
    units, carried_out = divmod(batch["carried_in_grams"] + batch["quantity_grams"], GRAMS_PER_UNIT)
    stored = {
        "_id": batch["batch_id"],
        "batch": batch,
        "participant": holder,
        "digest": sm3_hex(canonical_bytes(batch)),
    }
    link = {
        "n": group_position,
        "units": units,
        "carried_out_grams": carried_out,
        "start": first_serial if units else None,
        "end": first_serial + units - 1 if units else None,
        "at": at,
    }
    return {"format": RECORD_FORMAT, **Issuance._issue_body(stored, link)}


def operate(current: list[dict], kind: str, client_id: str, request: dict, at: str, holder: str = HOLDER) -> dict:
    """The registry's record of one transfer/retire/cancel on a batch's `current` blocks (updated
    in place), as `Ledger.operate` makes it: the holder's lowest-serial active block with enough units."""
    block = Ledger._choose(current, holder, request["units"])
    record = {"format": RECORD_FORMAT, **Ledger._body(f"{kind}:{holder}:{client_id}", kind, holder, block, request, at)}
    current.remove(block)
    current.extend(record["produced"])
    current.sort(key=lambda b: b["start"])
    return record


def build_entry(
    signer: Signer,
    *,
    batch_id: str,
    leaves: list[dict],
    owner_pid: str,
    first_serial: int,
    operations: list[tuple],
    carried_in_grams: int = 0,
    carried_from: str = "",
    group_position: int = 1,
    attempt: int = 1,
    created_at: str = "2027-01-05T02:00:00Z",
    at: str = "2027-01-06T03:00:00Z",
) -> dict:
    """One `batches[]` entry: the whole batch (every owner's leaves) signed by the bank, issued by
    the registry and then operated on; only `owner_pid`'s leaves are disclosed, with their proofs,
    and only the retirements are listed. operations, in order: ("retire", units, beneficiary,
    reason) or ("transfer", units, to_holder)."""
    methodology_id, version, vintage = (
        leaves[0]["methodology_id"],
        leaves[0]["methodology_version"],
        leaves[0]["vintage"],
    )
    hashes = [leaf_hash(leaf) for leaf in leaves]
    occurred = sorted(leaf["occurred_at"] for leaf in leaves)
    batch = {
        "format": BATCH_FORMAT,
        "batch_id": batch_id,
        "methodology_id": methodology_id,
        "methodology_version": version,
        "vintage": vintage,
        "record_count": len(leaves),
        "quantity_grams": sum(leaf["grams"] for leaf in leaves),
        "carried_in_grams": carried_in_grams,
        "carried_from": carried_from,
        "merkle_root": merkle_root(hashes),
        "consent_root": consent_root(
            leaves, {leaf["reduction_id"]: "consent-" + leaf["owner_pid"][:8] for leaf in leaves}
        ),
        "period": f"{occurred[0]}/{occurred[-1]}",
        "created_at": created_at,
    }
    if attempt != 1:
        batch["attempt"] = attempt
    issue = issue_record(batch, first_serial, at, group_position)
    assert issue["units"] >= 1, "a fixture batch must make at least one whole tonne"
    current = list(issue["produced"])
    retire_entries = []
    for k, (kind, units, *fields) in enumerate(operations):
        if kind == "retire":
            request = {"batch_id": batch_id, "units": units, "beneficiary": fields[0], "reason": fields[1]}
        else:
            request = {"batch_id": batch_id, "units": units, "to_holder": fields[0]}
        record = operate(current, kind, f"{kind}-{k + 1}", request, at)
        if kind == "retire":
            retire_entries.append(
                {"record": record, "registry_signature": signer.registry(record, f"{batch_id} retire {k + 1}")}
            )
    return {
        "batch": batch,
        "bank_signature": signer.bank(batch, batch_id),
        "issuance": {"record": issue, "registry_signature": signer.registry(issue, f"{batch_id} issue")},
        "retirements": retire_entries,
        "leaves": [
            {"leaf": leaf, "proof": merkle_proof(hashes, h)}
            for leaf, h in zip(leaves, hashes)
            if leaf["owner_pid"] == owner_pid
        ],
    }


def build_certificate(owner_pid: str, entries: list[dict], issued_at: str = "2027-01-07T08:00:00+08:00") -> dict:
    return {
        "format": CERTIFICATE_FORMAT,
        "owner_pid": owner_pid,
        "issued_at": issued_at,
        "total_grams": sum(le["leaf"]["grams"] for entry in entries for le in entry["leaves"]),
        "batches": entries,
    }


OWNER = sm3_hex(b"owner: customer 6222000011112222")
OTHERS = [sm3_hex(f"owner: customer {n}".encode()) for n in range(1, 6)]
BENEFICIARY = "深圳市民 张三 🌱"


def _leaves(prefix, owners_grams, when, methodology=("metro-ride", "1.0.0"), factor_set=("cn-grid-华南", "2026.1")):
    return [
        make_leaf(
            f"{prefix}-{k + 1:03d}",
            grams,
            owner,
            (when + timedelta(hours=k)).isoformat().replace("+00:00", "Z"),
            methodology,
            factor_set,
        )
        for k, (owner, grams) in enumerate(owners_grams)
    ]


@dataclass
class Sample:
    """A valid certificate of OWNER over three batches (5, 3 and 7 leaves in all; 3, 1 and 3 of
    the owner; the second re-formed as attempt 2; a transfer in the first that the certificate does
    not list), plus material to tamper with: leaves of others with valid proofs."""

    keys: Keys
    certificate: dict
    other_owner_leaf: dict  # {"leaf", "proof"} of another owner in batch 0: a valid inclusion
    batch_of_other_vintage_leaf: dict  # {"leaf", "proof"} of OWNER in batch 2 (vintage 2027)

    def copy(self) -> dict:
        return copy.deepcopy(self.certificate)


def sample_certificate(keys: Keys | None = None) -> Sample:
    keys = keys or new_keys()
    signer = Signer(keys)
    t2026 = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)
    a = _leaves(
        "red-a", [(OWNER, 812_345), (OTHERS[0], 1_000_001), (OWNER, 45_600), (OTHERS[1], 333_333), (OWNER, 7)], t2026
    )
    b = _leaves("red-b", [(OTHERS[2], 640_000), (OWNER, 910_000), (OTHERS[3], 455_555)], t2026 + timedelta(days=40))
    c = _leaves(
        "red-c",
        [
            (OWNER, 300_000),
            (OTHERS[0], 999_999),
            (OTHERS[4], 120_000),
            (OWNER, 1_250_000),
            (OTHERS[2], 80_808),
            (OWNER, 61),
            (OTHERS[3], 5),
        ],
        datetime(2027, 2, 1, 1, 0, tzinfo=timezone.utc),
        methodology=("bike-share", "2.1"),
    )
    entry_a = build_entry(
        signer,
        batch_id="batch-2026-metro-0001",
        leaves=a,
        owner_pid=OWNER,
        first_serial=1,
        operations=[("retire", 1, BENEFICIARY, "个人碳中和 2026"), ("transfer", 1, "bank-b")],
    )
    carried = entry_a["issuance"]["record"]["carried_out_grams"]
    entry_b = build_entry(
        signer,
        batch_id="batch-2026-metro-0002",
        leaves=b,
        owner_pid=OWNER,
        first_serial=entry_a["issuance"]["record"]["end"] + 1,
        carried_in_grams=carried,
        carried_from="batch-2026-metro-0001",
        group_position=2,
        attempt=2,  # re-formed after the registry rejected attempt 1
        operations=[("retire", 1, BENEFICIARY, "offset"), ("retire", 1, "Shenzhen Metro Green Fund", "offset")],
    )
    entry_c = build_entry(
        signer,
        batch_id="batch-2027-bike-0001",
        leaves=c,
        owner_pid=OWNER,
        first_serial=1,
        operations=[("retire", 2, BENEFICIARY, "gift")],
    )
    certificate = build_certificate(OWNER, [entry_a, entry_b, entry_c])
    hashes_a = [leaf_hash(leaf) for leaf in a]
    other = a[1]
    return Sample(
        keys=keys,
        certificate=certificate,
        other_owner_leaf={"leaf": other, "proof": merkle_proof(hashes_a, leaf_hash(other))},
        batch_of_other_vintage_leaf=copy.deepcopy(entry_c["leaves"][0]),
    )


def resign_retirement(certificate: dict, keys: Keys, batch: int, index: int) -> None:
    """After editing a retirement record: the registry's signature over it again, so only the
    edit itself (not the signature) is what a verifier can object to."""
    entry = certificate["batches"][batch]["retirements"][index]
    entry["registry_signature"] = Signer(keys).registry(entry["record"])


def resign_issuance(certificate: dict, keys: Keys, batch: int) -> None:
    """The same for an edited issuance record."""
    entry = certificate["batches"][batch]["issuance"]
    entry["registry_signature"] = Signer(keys).registry(entry["record"])


# ---- a certificate across key rotations -----------------------------------------------------------

ROTATION_A, ROTATION_B = "batch-2026-metro-0101", "batch-2026-metro-0102"


@dataclass
class Rotation:
    """A valid certificate of OWNER whose two batches span a rotation of the bank's key and one of
    the registry's: batch A was signed by the bank's old key and issued and retired under the
    registry's old key; the bank rotated before it signed batch B, which the registry issued under
    its old key and retired under its new one (it rotated in between)."""

    old: Keys
    new: Keys
    certificate: dict

    def copy(self) -> dict:
        return copy.deepcopy(self.certificate)


def rotation_certificate() -> Rotation:
    old, new = new_keys(), new_keys()
    when = datetime(2026, 6, 1, 1, 0, tzinfo=timezone.utc)
    a = _leaves("rot-a", [(OWNER, 700_000), (OTHERS[0], 450_000), (OWNER, 12)], when)
    b = _leaves("rot-b", [(OTHERS[1], 980_000), (OWNER, 64_000)], when + timedelta(days=30))
    entry_a = build_entry(
        Signer(old),
        batch_id=ROTATION_A,
        leaves=a,
        owner_pid=OWNER,
        first_serial=1,
        operations=[("retire", 1, BENEFICIARY, "before the rotation")],
    )
    # the bank's new key over batch B, the registry's old key over its issuance
    b_signer = Signer(Keys(new.bank_private, new.bank_public, old.registry_private, old.registry_public))
    entry_b = build_entry(
        b_signer,
        batch_id=ROTATION_B,
        leaves=b,
        owner_pid=OWNER,
        first_serial=entry_a["issuance"]["record"]["end"] + 1,
        carried_in_grams=entry_a["issuance"]["record"]["carried_out_grams"],
        carried_from=ROTATION_A,
        group_position=2,
        operations=[("retire", 1, BENEFICIARY, "after the rotation")],
    )
    certificate = build_certificate(OWNER, [entry_a, entry_b])
    resign_retirement(certificate, new, 1, 0)  # the registry had rotated by then
    return Rotation(old=old, new=new, certificate=certificate)


# ---- the test vector of docs/certificate.md ------------------------------------------------------

VECTOR_OWNER = sm3_hex(b"owner: test vector customer")
VECTOR_OTHER = sm3_hex(b"owner: test vector someone else")


def doc_vector() -> tuple[Keys, dict]:
    """One batch of three leaves (two of the owner), one issuance of 2 units, one retirement of
    unit 1; every byte fixed."""
    keys = fixed_keys()
    leaves = [
        make_leaf("tv-red-0001", 812_345, VECTOR_OWNER, "2026-11-25T00:30:00Z", factor_set=("cn-grid-华南", "2026.1")),
        make_leaf(
            "tv-red-0002", 1_200_000, VECTOR_OTHER, "2026-11-25T09:10:00Z", factor_set=("cn-grid-华南", "2026.1")
        ),
        make_leaf("tv-red-0003", 45_678, VECTOR_OWNER, "2026-12-31T15:59:59Z", factor_set=("cn-grid-华南", "2026.1")),
    ]
    entry = build_entry(
        Signer(keys, fixed_nonces=True),
        batch_id="tv-batch-0001",
        leaves=leaves,
        owner_pid=VECTOR_OWNER,
        first_serial=1,
        operations=[("retire", 1, "张三", "个人碳中和")],
        created_at="2027-01-05T02:00:00Z",
        at="2027-01-06T03:00:00Z",
    )
    return keys, build_certificate(VECTOR_OWNER, [entry], issued_at="2027-01-07T08:00:00+08:00")


def doc_vector_rows() -> list[tuple[str, str]]:
    """(name, value) rows of the test-vector tables of docs/certificate.md §9."""
    keys, cert = doc_vector()
    entry = cert["batches"][0]
    batch, issue, retire = entry["batch"], entry["issuance"]["record"], entry["retirements"][0]["record"]
    by_id = {le["leaf"]["reduction_id"]: le for le in entry["leaves"]}
    leaves = [
        make_leaf("tv-red-0001", 812_345, VECTOR_OWNER, "2026-11-25T00:30:00Z", factor_set=("cn-grid-华南", "2026.1")),
        make_leaf(
            "tv-red-0002", 1_200_000, VECTOR_OTHER, "2026-11-25T09:10:00Z", factor_set=("cn-grid-华南", "2026.1")
        ),
        make_leaf("tv-red-0003", 45_678, VECTOR_OWNER, "2026-12-31T15:59:59Z", factor_set=("cn-grid-华南", "2026.1")),
    ]
    assert [by_id[r]["leaf"] for r in ("tv-red-0001", "tv-red-0003")] == [leaves[0], leaves[2]]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    levels = merkle_levels(hashes)
    canonical = lambda doc: canonical_bytes(doc).decode("utf-8")  # noqa: E731
    return [
        ("bank private key", keys.bank_private),
        ("bank public key", keys.bank_public),
        ("registry private key", keys.registry_private),
        ("registry public key", keys.registry_public),
        *[(f"leaf {k + 1}", canonical(leaf)) for k, leaf in enumerate(leaves)],
        *[(f"leaf hash {k + 1}", h) for k, h in enumerate(hashes)],
        ("sorted leaf hashes", ",".join(levels[0])),
        ("level 1, node 1", levels[1][0]),
        ("merkle_root", batch["merkle_root"]),
        ("proof of leaf 1", canonical(by_id["tv-red-0001"]["proof"])),
        ("proof of leaf 3", canonical(by_id["tv-red-0003"]["proof"])),
        ("canonical_json(batch)", canonical(batch)),
        ("SM3 of canonical_json(batch)", sm3_hex(canonical_bytes(batch))),
        ("k of bank_signature", nonce_for("bank tv-batch-0001")),
        ("bank_signature", entry["bank_signature"]),
        ("canonical_json(issuance record)", canonical(issue)),
        ("k of issuance registry_signature", nonce_for("registry tv-batch-0001 issue")),
        ("issuance registry_signature", entry["issuance"]["registry_signature"]),
        ("canonical_json(retirement record)", canonical(retire)),
        ("k of retirement registry_signature", nonce_for("registry tv-batch-0001 retire 1")),
        ("retirement registry_signature", entry["retirements"][0]["registry_signature"]),
        ("bank key fingerprint", key_fingerprint(keys.bank_public)),
        ("registry key fingerprint", key_fingerprint(keys.registry_public)),
        ("certificate digest", certificate_digest(cert)),
    ]


if __name__ == "__main__":
    # Regenerate the doc's test vector: the example file, and the table rows to paste into §9.
    import json
    import sys
    from pathlib import Path

    example = (
        Path(__file__).resolve().parents[2]
        / "tools"
        / "certificate-verifier"
        / "examples"
        / "certificate-v2-test-vector.json"
    )
    example.parent.mkdir(exist_ok=True)
    example.write_text(json.dumps(doc_vector()[1], ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write("".join(f"| {name} | `{value}` |\n" for name, value in doc_vector_rows()))
