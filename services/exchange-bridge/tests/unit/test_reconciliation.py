"""Reconciliation (exchange_bridge.reconciliation) over the unit suite's fakes: a clean history
reconciles clean, and each kind of difference — planted in the registry, the bridge's store or
the ledger — is reported under its check, never fixed. It reads the bridge's store by `_id`
only and writes nothing. The same against the real registry: tests/integration/."""

import copy

import pytest
from nameko.exceptions import RemoteError

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import batch_format as bf
from exchange_bridge import reconciliation, rules
from exchange_bridge.bridge import Bridge
from exchange_bridge.reconciliation import CHECKS, ReconciliationFailed, Reconciler
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import FakeAccount, FakeDatabase, FakeDispatch, FakeRegistry, contribution

TONNE = 1_000_000
PARTICIPANT = "bank-a"
KEYS = gm.generate_sm2_keypair()
POOLS = ("bank-pool", "bank-pool/1")


class Registry(FakeRegistry):
    """The fake registry with the two reads reconciliation makes: the transaction history
    (records in the registry's order) and a holder's blocks by status; its issue records
    carry what the real registry's do (roots, grams, carry, digest, group position)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.positions: dict[str, int] = {}
        self._batch = None

    def submit(self, body):
        self._batch = body["batch"]
        try:
            return super().submit(body)
        finally:
            self._batch = None

    def _sign(self, body):
        if body.get("type") == "issue" and self._batch is not None:
            b = self._batch
            group = bf.group_key(b["methodology_id"], b["methodology_version"], b["vintage"])
            self.positions[group] = self.positions.get(group, 0) + 1
            body = dict(
                body,
                merkle_root=b["merkle_root"],
                consent_root=b["consent_root"],
                quantity_grams=b["quantity_grams"],
                carried_in_grams=b["carried_in_grams"],
                carried_from=b["carried_from"],
                batch_digest=gm.sm3_hex(canonical_bytes(b)),
                group_position=self.positions[group],
            )
        return super()._sign(body)

    def transactions(self, after=0, limit=100):
        records = [dict(r, seq=n) for n, r in enumerate(self.records.values(), start=1)]
        page = records[after : after + limit]
        return {"transactions": copy.deepcopy(page), "after": after + len(page)}

    def status(self, batch_id):
        found = super().status(batch_id)
        if found is None:
            return None
        ops = [copy.deepcopy(r) for r in self.records.values() if r["type"] != "issue" and r["batch_id"] == batch_id]
        blocks = [
            dict(_block(batch_id, b["start"], b["end"]), holder=b["holder"], status="active")
            for b in self.blocks.get(batch_id, [])
        ]
        for op in ops:
            if op["type"] in ("retire", "cancel"):
                status = {"retire": "retired", "cancel": "cancelled"}[op["type"]]
                blocks.append(dict(_block(batch_id, op["start"], op["end"]), holder=op["from_holder"], status=status))
        return dict(found, blocks=blocks, operations=ops)

    def holdings(self, holder=None):
        out = {"active": [], "retired": [], "cancelled": [], "transferred": []}
        for batch_id, blocks in self.blocks.items():
            for block in blocks:
                if block["holder"] == holder:
                    out["active"].append(_block(batch_id, block["start"], block["end"]))
        for record in self.records.values():
            if record["type"] != "issue" and record["from_holder"] == holder:
                status = {"transfer": "transferred", "retire": "retired", "cancel": "cancelled"}[record["type"]]
                out[status].append(_block(record["batch_id"], record["start"], record["end"]))
        return {"holder": holder, "blocks": out}


def _block(batch_id, start, end):
    return {"batch_id": batch_id, "start": start, "end": end, "units": end - start + 1}


class Account(FakeAccount):
    """The fake pool chains plus the customers' accounts: what each credited."""

    def __init__(self):
        super().__init__()
        self.credited: dict[str, int] = {}  # account id -> credited grams

    def credit(self, owner: str, grams: int) -> None:
        self.credited[f"acc-{owner}"] = self.credited.get(f"acc-{owner}", 0) + grams

    def redeem_of(self, owner: str, reductions: list[dict], pool: str = "bank-pool", grams=None) -> dict:
        entry = self.redeem(reductions, pool, grams)
        entry["source_account_id"] = f"acc-{owner}"
        return entry

    def account_figures(self, account_ids):
        assert 0 < len(account_ids) <= 500
        return {
            a: {"owner_pid": a.removeprefix("acc-"), "credited_grams": self.credited[a]}
            for a in account_ids
            if a in self.credited
        }

    def get_totals(self, account_id=None, owner_pid=None):
        aid = account_id or (f"acc-{owner_pid}" if owner_pid else None)
        if aid is not None and aid not in self.credited:
            raise RemoteError("LookupError", aid)
        return {"credited_grams": self.credited[aid] if aid else sum(self.credited.values()), "pool_grams": 0}


class World:
    def __init__(self):
        self.db, self.account, self.dispatch = FakeDatabase(), Account(), FakeDispatch()
        self.registry = Registry(PARTICIPANT, KEYS[1])
        self.signer = Signer(*KEYS, key_id="k1")

    def bridge(self) -> Bridge:
        return Bridge(
            self.account,
            Repository(self.db),
            self.registry,
            self.signer,
            self.dispatch,
            PARTICIPANT,
            min_grams=TONNE,
            pool_owners=POOLS,
        )

    def earn_and_redeem(self, owner: str, items, pool="bank-pool", extra_credit=0) -> list[dict]:
        reductions = [contribution(owner, grams, methodology=m, year=y) for grams, m, y in items]
        self.account.credit(owner, sum(r["grams"] for r in reductions) + extra_credit)
        self.account.redeem_of(owner, reductions, pool)
        return reductions

    def reconcile(self, grace: float = 0) -> dict:
        """grace 0: an operation the bridge has not recorded counts at once (tests plant old ones)."""
        return Reconciler(Repository(self.db), self.registry, self.account, PARTICIPANT, POOLS, grace=grace).run()


@pytest.fixture
def world():
    """Three customers, two groups, three pool transfers over two pool chains, a rejection
    (released and re-batched), three issued batches (5 units), a transfer and a retirement."""
    w = World()
    w.earn_and_redeem("pid-alice", [(1_400_000, "metro_ride", 2026), (600_000, "bus_ride", 2025)], extra_credit=5)
    w.earn_and_redeem("pid-bob", [(900_000, "metro_ride", 2026)], pool="bank-pool/1")
    w.registry.reject = 1  # the first batch is rejected: released, then batched again (attempt 2)
    w.bridge().run()
    w.bridge().run()
    w.earn_and_redeem("pid-carol", [(2_300_000, "metro_ride", 2026), (700_000, "bus_ride", 2025)])
    w.bridge().run()
    issued = sorted(b for b, s in w.registry.batches.items() if s["status"] == "issued" and s["units"] >= 2)
    units = w.bridge().units
    units.transfer(issued[0], 1, "bank-b", "move-1")
    units.retire(issued[0], 1, "pid-carol", "offset", "retire-1")
    w.issued = issued
    return w


def counts_of(result: dict) -> dict:
    return {check: n for check, n in result["counts"].items() if n}


def test_a_clean_history_reconciles_clean_reading_by_id_only_and_writing_nothing(world):
    before = world.db.snapshot()
    world.db.commands.clear()

    result = world.reconcile()

    assert result["ok"], result["differences"]
    assert result["counts"] == dict.fromkeys(CHECKS, 0) and result["in_flight"] == []
    figures = result["figures"]
    assert (figures["batches"], figures["issued_batches"]) == (4, 3)  # + the rejected attempt 1
    assert figures["registry_units"] == figures["bridge_units"] == 5
    assert figures["operations_checked"] == 2
    assert figures["units_by_status"] == {"active": 3, "retired": 1, "cancelled": 0, "transferred": 1}
    assert figures["reductions_batched"] == figures["reductions_issued"] == 5
    assert figures["registered_grams"] <= figures["redeemed_to_pool_grams"] <= figures["credited_grams"]
    assert world.db.not_by_id() == [] and world.db.snapshot() == before
    assert result["cost"]["bridge_reads"] == len(world.db.commands) and result["cost"]["registry_calls"] >= 2


def test_the_whole_tonnes_and_remainder_per_group(world):
    groups = world.reconcile()["figures"]["by_group"]
    # metro 2026: 1.4 + 0.9 (rejected once, then issued) and 2.3 = 4.6 t -> 4 units, 0.6 t carried;
    # bus 2025: 0.6 + 0.7 = 1.3 t -> 1 unit, 0.3 t carried
    assert groups == {
        "metro_ride:1:2026": {"batches": 2, "grams": 4_600_000, "units": 4, "carried": 600_000},
        "bus_ride:1:2025": {"batches": 1, "grams": 1_300_000, "units": 1, "carried": 300_000},
    }


def test_a_registry_record_that_differs_is_reported_not_fixed(world):
    batch_id = world.issued[0]
    record = world.registry.records["issue:" + batch_id]
    record["serial"], record["end"] = record["serial"][:-1] + "9", record["end"] + 1
    stored = copy.deepcopy(world.db.snapshot())

    result = world.reconcile()

    assert not result["ok"]
    found = [d for d in result["differences"] if d["subject"] == batch_id and d["check"] == "registry_batches"]
    assert found and "end" in found[0]["what"] and "serial" in found[0]["what"]
    assert "group_units" in counts_of(result)  # the serial block now overlaps the next one
    assert world.db.snapshot() == stored  # nothing fixed


def test_a_batch_issued_to_the_bank_that_the_bridge_does_not_know(world):
    leaves = [dict(contribution("pid-x", 1_500_000, methodology="walking"), vintage=2026)]
    leaf = rules.leaf_of(leaves[0])
    hashes = [bf.consent_leaf_hash(leaf["reduction_id"], "c")]
    batch = bf.batch_document([leaf], hashes, 0, "", "2026-12-01T00:00:00Z", 1)
    world.registry.submit(
        {
            "batch": batch,
            "leaves": [leaf],
            "consent_leaves": hashes,
            "signature": gm.sm2_sign(KEYS[0], canonical_bytes(batch)).hex(),
            "key_id": "k1",
        }
    )
    result = world.reconcile()
    assert counts_of(result)["unknown_batches"] == 1
    assert [d["what"] for d in result["differences"] if d["check"] == "unknown_batches"] == [
        "issued to the bank at the registry, unknown to the bridge"
    ]


def test_a_batch_the_registry_issued_while_the_bridge_waits_for_the_answer_is_in_flight(world):
    world.earn_and_redeem("pid-dan", [(1_100_000, "metro_ride", 2026)])
    world.registry.lose = 1  # the registry issues it, the answer is lost: the bridge holds it as submitted
    world.bridge().run()
    result = world.reconcile()
    assert result["ok"], result["differences"]
    assert len(result["in_flight"]) == 1 and "submitted" in result["in_flight"][0]["bridge_states"]
    world.bridge().run()  # the next pass asks the registry and stores the outcome
    again = world.reconcile()
    assert again["ok"] and again["in_flight"] == []


def test_a_batch_the_bridge_stores_as_issued_while_the_run_reads_is_no_difference(world, monkeypatch):
    world.earn_and_redeem("pid-dan", [(1_100_000, "metro_ride", 2026)])
    world.registry.lose = 1  # issued at the registry, the answer lost: the bridge waits
    world.bridge().run()
    read_registry = Reconciler._registry

    def racing(self, report):  # the bridge's next pass lands between the run's two reads
        world.bridge().run()
        return read_registry(self, report)

    monkeypatch.setattr(Reconciler, "_registry", racing)
    result = world.reconcile()
    assert result["ok"], result["differences"]


def test_unit_operations_the_registry_has_and_the_bridge_does_not_and_vice_versa(world):
    world.registry.cancel("c-outside", world.issued[1], 1, "done outside the bridge")
    result = world.reconcile()
    ops = [d for d in result["differences"] if d["check"] == "unit_operations"]
    assert [d["subject"] for d in ops] == [f"cancel:{PARTICIPANT}:c-outside"]
    assert counts_of(result)["holdings"] == 1  # the registry holds one unit less of that batch

    del world.registry.records[f"retire:{PARTICIPANT}:{rules.client_id('retire', 'retire-1')}"]
    result = world.reconcile()
    subjects = {d["subject"] for d in result["differences"] if d["check"] == "unit_operations"}
    assert f"retire:{PARTICIPANT}:{rules.client_id('retire', 'retire-1')}" in subjects


def test_a_registry_operation_the_bridge_is_still_recording_is_in_flight(world):
    world.registry.retire("r-now", world.issued[1], 1, "pid-x", "offset")  # a caller's call on its way
    result = world.reconcile(grace=120)
    assert result["ok"], result["differences"]
    assert [f["operation"] for f in result["in_flight"]] == [f"retire:{PARTICIPANT}:r-now"]


def test_an_operation_stored_but_not_finished_at_the_bridge(world):
    unit_ops = world.db["unit_ops"].docs
    last = max(k for k in unit_ops if k.startswith(world.issued[0]))
    op_id = unit_ops.pop(last)["op_id"]
    result = world.reconcile()
    [found] = [d for d in result["differences"] if d["check"] == "unit_operations"]
    assert found["subject"] == op_id and "call it again with its request key" in found["what"]


def test_the_invariant_per_account_and_in_total(world):
    world.account.credited["acc-pid-bob"] = 100  # bob credited less than he redeemed to the pool
    result = world.reconcile()
    found = {d["subject"]: d for d in result["differences"] if d["check"] == "invariant"}
    assert set(found) == {"acc-pid-bob", "total"}  # total credited 5.0 t < 5.9 t redeemed to the pool
    assert (found["acc-pid-bob"]["redeemed"], found["acc-pid-bob"]["credited"]) == (900_000, 100)

    world.account.credited["acc-pid-bob"] = 900_000
    world.account.chains["bank-pool/1"][-1]["grams"] = 10  # the pool received less than the batch holds
    result = world.reconcile()
    found = {d["subject"]: d for d in result["differences"] if d["check"] == "invariant"}
    assert set(found) == {"acc-pid-bob", "total"}
    assert (found["acc-pid-bob"]["registered"], found["acc-pid-bob"]["redeemed"]) == (900_000, 10)


def test_a_reduction_in_two_issued_batches_and_a_broken_issued_index(world):
    db = world.db
    batch_id = world.issued[0]
    slot = next(s for s in db["slots"].docs.values() if s["batch_id"] == batch_id)
    group = slot["group"]
    last_n = max(s["n"] for s in db["slots"].docs.values() if s["group"] == group)
    copy_id = "f" * 64
    db["slots"].docs[rules.slot_id(group, last_n + 1)] = dict(
        slot, _id=rules.slot_id(group, last_n + 1), n=last_n + 1, batch_id=copy_id
    )
    db["batches"].docs[copy_id] = dict(db["batches"].docs[batch_id], _id=copy_id)
    for state in ("formed", "submitted", "verified", "issued"):
        t = db["transitions"].docs[rules.transition_id(batch_id, state)]
        db["transitions"].docs[rules.transition_id(copy_id, state)] = dict(
            t, _id=rules.transition_id(copy_id, state), batch_id=copy_id
        )
    some = next(iter(db["issued"].docs))
    db["issued"].docs[some] = dict(db["issued"].docs[some], batch_id="0" * 64)

    result = world.reconcile()

    reductions = [d for d in result["differences"] if d["check"] == "reductions"]
    whats = {d["what"] for d in reductions}
    assert "issued in more than one batch" in whats and "in more than one batch" in whats
    assert "its `issued` document does not name the batch that issued it" in whats
    assert counts_of(result)["registry_batches"] == 1  # the copy is not at the registry


def test_a_written_off_reduction_in_an_issued_batch_is_reported(world):
    rid = next(iter(world.db["issued"].docs))
    world.db["write_offs"].docs[rid] = {"_id": rid, "grams": 1}
    result = world.reconcile()
    assert [d["what"] for d in result["differences"] if d["subject"] == rid] == ["written off, yet in an issued batch"]


def test_a_gram_a_correction_took_is_counted_once():
    """ADR 0005 §2: reductions corrected after intake are batched at the corrected grams and the
    pool writes the rest off — clean; a write-off missing, or at other grams than the batch
    holds, is reported under `corrections`; a slot correction the leaf does not follow, under
    `reductions`."""
    w = World()
    lowered, gone = w.earn_and_redeem("pid-dan", [(700_000, "metro_ride", 2026), (150_000, "metro_ride", 2026)])
    w.bridge().run()  # queued, below a tonne
    w.account.correct(lowered["reduction_id"], 500_000)
    w.account.correct(gone["reduction_id"], 0)
    w.earn_and_redeem("pid-eve", [(600_000, "metro_ride", 2026)])
    w.bridge().run()
    result = w.reconcile()
    assert result["ok"], result["differences"]
    assert (result["figures"]["correction_write_offs"], result["figures"]["correction_written_off_grams"]) == (
        2,
        350_000,
    )
    assert result["figures"]["registered_grams"] == 1_100_000

    offs = {e["reduction_id"]: e for e in w.account.chains["bank-pool"] if e["type"] == "correction_write_off"}
    offs[lowered["reduction_id"]]["corrected_grams"] = 600_000
    found = [d for d in w.reconcile()["differences"] if d["check"] == "corrections"]
    assert [(d["subject"], d["batched"], d["corrected"]) for d in found] == [
        (lowered["reduction_id"], 500_000, 600_000)
    ]

    offs[lowered["reduction_id"]]["type"] = "other"  # the pool never wrote it off
    found = [d for d in w.reconcile()["differences"] if d["check"] == "corrections"]
    assert [d["what"] for d in found] == ["the batch carries it at corrected grams the pool has not written off"]
    offs[lowered["reduction_id"]]["type"] = "correction_write_off"
    offs[lowered["reduction_id"]]["corrected_grams"] = 500_000

    (slot,) = w.db["slots"].docs.values()
    slot["corrections"][0]["grams"] = 400_000  # the leaf no longer follows its slot
    result = w.reconcile()
    assert counts_of(result) == {"reductions": 1}


def test_a_correction_after_the_batch_was_formed_is_listed_as_overstated_not_as_a_difference():
    """ADR 0005 §2: a correction that reaches the ledger after the batch holding the reduction was
    formed cannot lower what the exchange holds; each run lists it with the grams over (the bank
    decides), and a correction the slot applied is not listed."""
    w = World()
    applied, _ = w.earn_and_redeem("pid-fay", [(700_000, "metro_ride", 2026), (150_000, "metro_ride", 2026)])
    w.bridge().run()  # queued, below a tonne
    w.account.correct(applied["reduction_id"], 500_000)  # in time: the slot applies it
    (late,) = w.earn_and_redeem("pid-gus", [(600_000, "metro_ride", 2026)])
    w.bridge().run()
    (batch_id,) = w.registry.issued()
    clean = w.reconcile()
    assert clean["ok"] and clean["overstated"] == [] and clean["figures"]["overstated_at_exchange_grams"] == 0

    w.account.correct(late["reduction_id"], 420_000)  # too late: the signed batch holds 600 kg
    again = w.reconcile()
    assert again["ok"] and again["counts"] == dict.fromkeys(CHECKS, 0)  # no run can take it back
    assert again["overstated"] == [
        {
            "reduction_id": late["reduction_id"],
            "batch_id": batch_id,
            "batched": 600_000,
            "corrected": 420_000,
            "over": 180_000,
        }
    ]
    figures = again["figures"]
    assert (figures["corrected_after_batching"], figures["overstated_at_exchange_grams"]) == (1, 180_000)
    reconciliation.publish(again)
    assert reconciliation.report.OVERSTATED._value.get() == 180_000


def test_gauges_and_the_log_line(world, caplog):
    result = world.reconcile()
    with caplog.at_level("INFO"):
        reconciliation.publish(result)
    assert reconciliation.DIFFERENCES.labels("invariant")._value.get() == 0
    assert reconciliation.LAST_RUN._value.get() > 0
    world.account.credited["acc-pid-bob"] = 1
    bad = world.reconcile()
    with caplog.at_level("WARNING"):
        reconciliation.publish(bad)
    assert reconciliation.DIFFERENCES.labels("invariant")._value.get() == 2  # bob, and the total
    assert any(r.message.startswith("exchange reconciliation found differences") for r in caplog.records)


def test_a_registry_that_does_not_answer_fails_the_run(world, monkeypatch):
    from exchange_bridge.registry_client import Unknown

    def down(*args, **kwargs):
        raise Unknown("no answer")

    monkeypatch.setattr(world.registry, "transactions", down)
    with pytest.raises(ReconciliationFailed):
        world.reconcile()
