"""What the account service does: open accounts, credit, reverse, redeem, freeze, forget.

Each operation is one append with a deterministic entry id, so repeating it (redelivery,
client retry) returns the entry written the first time and writes nothing new.
"""

from carbon_common.accounts import POOL_OWNERS

from account import caps, ledger, provenance, settlement
from account.ledger import AccountNotOpen, InsufficientBalance, InvalidRequest, RequestKeyReused
from account.posting import Appender, Request

AUDIT_FIELDS = (
    "reduction_id",
    "record_key",
    "revision",
    "supersedes",
    "partner_id",
    "partner_record_id",
    "consent_id",
    *ledger.PROVENANCE_FIELDS,
    "factors",
    "inputs",
    "baseline_g",
    "project_g",
    "dedup_key",
)


class LedgerOperations:
    def __init__(self, repository, tiers, on_outbox=lambda: None):
        self.repo = repository
        self.appender = Appender(repository, tiers, on_outbox)
        self.settlement = settlement.Settlement(self)
        self._accounts: dict[str, dict] = {}
        self.consumed = provenance.ConsumedCredits()

    # accounts
    def open_account(self, owner_pid: str, kind: str = "individual", alias: str | None = None) -> dict:
        if kind not in ledger.KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(ledger.KINDS)}", "invalid_kind")
        if not owner_pid or len(owner_pid) > 128:
            raise InvalidRequest("owner_pid must be 1..128 characters", "invalid_owner_pid")
        account_id = ledger.account_id_for(owner_pid)
        doc = {"_id": account_id, "owner_pid": owner_pid, "kind": kind, "opened_at": ledger.utc_now_iso()}
        if alias:
            doc["alias"] = alias
        if not self.repo.insert_account(doc):
            doc = self.repo.get_account(account_id)
            if doc["kind"] != kind:
                raise InvalidRequest(f"account of {owner_pid} exists as {doc['kind']}", "kind_mismatch")
        self._ensure_opened(doc)
        self._accounts[account_id] = doc
        return doc

    def account_for(self, owner_pid: str, open_kind: str | None = "individual") -> dict | None:
        account_id = ledger.account_id_for(owner_pid)
        doc = self._accounts.get(account_id) or self.repo.get_account(account_id)
        if doc is None:
            return self.open_account(owner_pid, open_kind) if open_kind else None
        if account_id not in self._accounts:
            self._ensure_opened(doc)
            self._accounts[account_id] = doc
        return doc

    def pool_account(self) -> dict:
        """The pool's first chain (shard 0); every shard is opened here too (ADR 0005 §3)."""
        for owner in POOL_OWNERS[1:]:
            self.account_for(owner, open_kind="pool")
        return self.account_for(ledger.POOL_OWNER, open_kind="pool")

    def _ensure_opened(self, doc: dict) -> None:
        request = self._opening_request(doc)
        self.appender.append(request.account_id, request.entry_id, request.decide)

    @staticmethod
    def _opening_request(doc: dict) -> Request:
        def decide(state):
            if state["seq"] != 0:  # opened meanwhile by another writer (or a broken chain: checked)
                raise ledger.AlreadyApplied(doc["_id"])
            return {"type": ledger.OPENED, "grams": 0, "status": "open", **_owner(doc)}

        return Request(doc["_id"], ledger.opened_entry_id(doc["_id"]), decide)

    def set_status(self, account_id: str, status: str, request_key: str, reason: str = "") -> dict:
        if status not in ledger.STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(ledger.STATUSES)}", "invalid_status")
        doc = self._existing(account_id)

        def decide(state):
            if state["status"] == "closed":
                raise AccountNotOpen("a closed account stays closed")
            return {
                "type": ledger.STATUS_CHANGED,
                "grams": 0,
                "status": status,
                "previous_status": state["status"],
                "code": reason or status,
                **_owner(doc),
            }

        entry, _ = self.appender.append(account_id, ledger.status_entry_id(account_id, request_key), decide)
        return entry

    def forget_person(self, user_pid: str) -> bool:
        """Deletion request: drop alias/contact links; entries keep only the pseudonym."""
        account_id = ledger.account_id_for(user_pid)
        if self.repo.get_account(account_id) is None:
            return False
        self.repo.unlink_personal_data(account_id, ledger.utc_now_iso())
        self._accounts.pop(account_id, None)
        return True

    def record_revocation(self, revocation: dict) -> bool:
        """A consent was revoked in ingest (ConsentRevoked): from now on every reduction of that
        consent not yet in the ledger is declined `consent_revoked` (credit_many reads these by
        `_id`). Insert-only, one document per consent; -> whether it is new here. A reduction
        credited before this is recorded stays credited: the ledger is append-only."""
        return self.repo.insert_revoked_consent(
            {
                "_id": revocation["consent_id"],
                "revoked_at": revocation.get("revoked_at", ""),
                "recorded_at": ledger.utc_now_iso(),
            }
        )

    def _existing(self, account_id: str) -> dict:
        doc = self._accounts.get(account_id) or self.repo.get_account(account_id)
        if doc is None:
            raise LookupError(account_id)
        return doc

    # crediting
    def credit(self, reduction: dict) -> dict:
        """Credit a ReductionCalculated payload once: credited, capped or declined."""
        entries, _ = self.credit_many([reduction])
        return entries[0]

    def credit_many(
        self, reductions: list[dict], traceparents: list[str] | None = None
    ) -> tuple[list[dict], list[dict]]:
        """Credit a batch of ReductionCalculated payloads, each once. -> (the entry of each
        reduction, opening entries of accounts first seen here). Reads: one `$in` each for
        accounts, dedup claims, revoked consents, and the reversals and earlier entries
        together; writes: see Appender.append_many."""
        accounts, openings = self._accounts_for([r["user_pid"] for r in reductions])
        claims = self._claims(reductions)
        revoked = self.repo.revoked_consents_among([r["consent_id"] for r in reductions if r.get("consent_id")])
        reversal_ids = [ledger.reversal_entry_id(r["reduction_id"]) for r in reductions]
        credit_ids = [ledger.credit_entry_id(r["reduction_id"]) for r in reductions]
        superseded = [r["supersedes"] for r in reductions if r.get("supersedes")]
        # one `$in` for the reversals, the entries this batch may have written before, and the
        # credits and reversals of the reductions that corrections supersede
        found = self.repo.entries_by_ids(
            reversal_ids
            + credit_ids
            + [o.entry_id for o in openings]
            + [ledger.credit_entry_id(rid) for rid in superseded]
            + [ledger.reversal_entry_id(rid) for rid in superseded]
        )
        requests = list(openings)
        traces = traceparents or [""] * len(reductions)
        for r, credit_id, reversal_id, traceparent in zip(reductions, credit_ids, reversal_ids, traces):
            account = accounts[ledger.account_id_for(r["user_pid"])]
            old_credit = found.get(ledger.credit_entry_id(r["supersedes"])) if r.get("supersedes") else None
            # A revocation stops what the ledger has not judged yet. A correction of a reduction
            # it judged before the revocation restates that judgment: it goes on as corrections do.
            consent_revoked = r.get("consent_id") in revoked and (
                old_credit is None or old_credit.get("code") == "consent_revoked"
            )
            if old_credit is not None:
                # A correction reverses what it supersedes first, in the same chain, so the new
                # credit and the old one are never both spendable (ADR 0005 §2).
                requests.append(self._reversal_request(self._supersede_reversal(r), account))
            requests.append(
                self._credit_request(
                    r,
                    account,
                    claims.get(r["reduction_id"]),
                    entry_id=credit_id,
                    reversed_first=reversal_id in found,
                    superseded_credit=old_credit,
                    traceparent=traceparent,
                    consent_revoked=consent_revoked,
                )
            )
        results = self.appender.append_many(requests, stored=found)
        # Known from now on: their opening entries are in the ledger. (Remembered before, a
        # batch that then failed would leave them unopened for this process: every retried
        # credit declined as account_not_open.)
        self._accounts.update(accounts)
        for result in results:
            if isinstance(result, Exception):
                raise result
        by_id = {entry["_id"]: entry for entry, _ in results}
        return [by_id[c] for c in credit_ids], [by_id[o.entry_id] for o in openings]

    @staticmethod
    def _supersede_reversal(reduction: dict) -> dict:
        """The ReductionReversed payload a superseding credit implies for what it supersedes."""
        return {
            "reduction_id": reduction["supersedes"],
            "record_key": reduction.get("record_key", ""),
            "user_pid": reduction["user_pid"],
            "scenario": reduction.get("scenario", ""),
            "reason": "factor_corrected",
            "corrected_by_version": reduction.get("methodology_version", ""),
            "corrected_grams": int(reduction["grams"]),  # kept on a locked_redeemed refusal
        }

    def _accounts_for(self, user_pids) -> tuple[dict, list[Request]]:
        """Account docs by id (opened when missing) and the opening requests of those not yet
        seen by this process (a no-op when the opening entry exists). The caller remembers
        the accounts once their openings are appended."""
        ids = {ledger.account_id_for(p): p for p in user_pids}
        new_here = [a for a in ids if a not in self._accounts]
        found = self.repo.accounts_by_ids(new_here)
        missing = [
            {"_id": a, "owner_pid": ids[a], "kind": "individual", "opened_at": ledger.utc_now_iso()}
            for a in new_here
            if a not in found
        ]
        if missing:
            self.repo.insert_accounts(missing)  # a concurrent opener's document is the same
            found.update(self.repo.accounts_by_ids([d["_id"] for d in missing]))
        openings = [self._opening_request(found[a]) for a in new_here]
        return {a: self._accounts.get(a) or found[a] for a in ids}, openings

    def _claims(self, reductions) -> dict[str, str]:
        """reduction_id -> record_key of another partner's record of the same behaviour that came first."""
        wanted = {}
        for r in reductions:
            if r.get("dedup_key"):
                claim_id = ledger.dedup_claim_id(r["scenario"], r["dedup_key"])
                wanted.setdefault(
                    claim_id, {"_id": claim_id, "record_key": r["record_key"], "reduction_id": r["reduction_id"]}
                )
        held = self.repo.claim_many(list(wanted.values()))
        out = {}
        for r in reductions:
            if r.get("dedup_key"):
                holder = held[ledger.dedup_claim_id(r["scenario"], r["dedup_key"])]
                if holder["record_key"] != r["record_key"]:
                    out[r["reduction_id"]] = holder["record_key"]
        return out

    def _credit_request(
        self,
        reduction: dict,
        account: dict,
        duplicate_of: str | None,
        *,
        entry_id: str,
        reversed_first: bool,
        superseded_credit: dict | None = None,
        traceparent: str = "",
        consent_revoked: bool = False,
    ) -> Request:
        """entry_id: the reduction's credit entry id; reversed_first: its reversal is in the
        ledger; superseded_credit: the credit entry of the reduction this one corrects;
        consent_revoked: its consent was revoked before the ledger judged it."""
        scenario = reduction["scenario"]
        grams = int(reduction["grams"])
        cap_list = [caps.Cap.from_event(c) for c in reduction.get("caps", [])]
        keys = {cap: caps.cap_key(scenario, cap, reduction["occurred_at"]) for cap in cap_list}
        audit = {k: reduction[k] for k in AUDIT_FIELDS if reduction.get(k) not in (None, "", {})}
        audit["caps"] = [cap.as_doc() for cap in cap_list]

        def decide(state):
            base = {**_owner(account), **audit, "requested_grams": grams}
            declined = self._decline_code(state, reversed_first, duplicate_of, consent_revoked)
            if not declined and superseded_credit is not None and self._consumed(state, superseded_credit):
                declined = "supersedes_locked"  # the corrected reduction was redeemed: it stands
            if declined:
                return {
                    **base,
                    "type": ledger.DECLINED,
                    "grams": 0,
                    "code": declined,
                    "duplicate_of_record_key": duplicate_of or "",
                }
            usage = {cap: self._usage(state, key) for cap, key in keys.items()}
            decision = caps.evaluate(grams, cap_list, usage)
            binding = decision.binding.as_doc() if decision.binding else None
            if decision.credited == 0 and grams > 0:
                return {**base, "type": ledger.CAPPED, "grams": 0, "capped_grams": grams, "cap": binding}
            return {
                **base,
                **({"traceparent": traceparent} if traceparent else {}),
                "type": ledger.CREDIT,
                "grams": decision.credited,
                "capped_grams": grams - decision.credited,
                "cap": binding,
                "cap_keys": sorted(keys.values()),
                "cap_grams": decision.credited,
                "cap_count": 1,
            }

        return Request(account["_id"], entry_id, decide)

    @staticmethod
    def _decline_code(
        state: dict, reversed_first: bool, duplicate_of: str | None, consent_revoked: bool = False
    ) -> str | None:
        if state["status"] != "open":
            return f"account_{state['status'] or 'not_open'}"
        if consent_revoked:  # the customer withdrew the consent the record came under
            return "consent_revoked"
        if reversed_first:
            return "reversed_before_credit"
        return "duplicate_behaviour" if duplicate_of else None

    def _usage(self, state: dict, key: str) -> tuple[int, int]:
        if caps.is_retained(key, max(ledger.utc_now_iso(), state["posted_at"])):
            return tuple(state["usage"].get(key, (0, 0)))
        return self.appender.cap_usage(state["account_id"], key, state["seq"])

    def _consumed(self, state: dict, credit: dict) -> bool:
        """Whether a credit of this account has given grams to a redemption (it is then locked)."""
        if credit.get("account_id") != state["account_id"] or credit["type"] != ledger.CREDIT:
            return False
        reader = provenance.ChainReader(self.repo, state["account_id"], state["seq"])
        return provenance.is_consumed(provenance.cursor_of(state, reader), credit["seq"])

    def reverse(self, reversal: dict) -> dict:
        """Post the reversal of a ReductionReversed payload's credit (once)."""
        account = self.account_for(reversal["user_pid"])
        request = self._reversal_request(reversal, account)
        entry, _ = self.appender.append(account["_id"], request.entry_id, request.decide)
        return entry

    def record_refusal(self, refusal: dict) -> dict:
        """calc refused to reverse a reduction an exchange batch holds: a zero-gram reversal
        entry with the refusal's code, so the ledger says why the grams stayed (once)."""
        rid = refusal["reduction_id"]
        account = self.account_for(refusal["user_pid"])

        def decide(state):
            original = self.repo.get_entry(ledger.credit_entry_id(rid))
            return {
                **_owner(account),
                "type": ledger.REVERSAL,
                "grams": 0,
                "reduction_id": rid,
                "record_key": refusal.get("record_key", ""),
                "scenario": refusal.get("scenario", ""),
                "code": refusal["code"],
                "batch_id": refusal.get("batch_id", ""),
                "corrected_by_version": refusal.get("corrected_by_version", ""),
                "corrected_grams": int(refusal.get("corrected_grams", 0)),
                "refused_entry_id": original["_id"] if original else "",
            }

        entry, _ = self.appender.append(account["_id"], ledger.reversal_entry_id(rid), decide)
        return entry

    def _reversal_request(self, reversal: dict, account: dict) -> Request:
        """A reversal takes back only grams nobody redeemed: a credit that gave grams to a
        redemption is locked (the customer keeps the reward; ADR 0005 §2), and the refusal
        is a zero-gram entry with code `locked_redeemed`."""
        rid = reversal["reduction_id"]

        def decide(state):
            original = self.repo.get_entry(ledger.credit_entry_id(rid))
            base = {
                **_owner(account),
                "type": ledger.REVERSAL,
                "reduction_id": rid,
                "record_key": reversal.get("record_key", ""),
                "scenario": reversal.get("scenario", ""),
                "reason": reversal.get("reason", ""),
                "corrected_by_version": reversal.get("corrected_by_version", ""),
            }
            if original is None or original["type"] != ledger.CREDIT:
                code = "original_not_credited" if original is None else f"original_{original['type']}"
                return {**base, "grams": 0, "code": code, "shortfall_grams": 0}
            if self._consumed(state, original):
                # the grams the correction gives, when known (calc's reversal event, or the
                # superseding reduction): the exchange receives at most these (ADR 0005 §2)
                known = reversal.get("corrected_grams")
                corrected = {"corrected_grams": int(known)} if known is not None and known != "" else {}
                return {**base, "grams": 0, "code": "locked_redeemed", "refused_entry_id": original["_id"], **corrected}
            taken = min(original["grams"], state["balance"])
            return {
                **base,
                "grams": -taken,
                "reverses_entry_id": original["_id"],
                "occurred_at": original.get("occurred_at", ""),
                "shortfall_grams": original["grams"] - taken,
                "cap_keys": original.get("cap_keys", []),
                "cap_grams": -original["grams"],
                "cap_count": -1,
            }

        return Request(account["_id"], ledger.reversal_entry_id(rid), decide)

    def write_off_corrections(self, items: list[dict]) -> list[dict]:
        """items: [{reduction_id, transfer_entry_id}], reductions that pool transfer carries.
        For each whose redeemed credit a correction lowered (provenance.lowered), append a
        `correction_write_off` of the difference to the pool chain that received the transfer,
        once (entry id from the reduction id) -> the write-off entries (new or already there).
        The figures are the ledger's own, whatever the caller believes."""
        out = []
        for low in provenance.lowered(self.repo, items):
            pool = self._existing(low.transfer["account_id"])
            draft = {
                **_owner(pool),
                "type": ledger.CORRECTION_WRITE_OFF,
                "grams": -low.written_off,
                "reduction_id": low.reduction_id,
                "transfer_entry_id": low.transfer["_id"],
                "source_account_id": low.transfer["source_account_id"],
                "reversal_entry_id": low.reversal["_id"],
                "original_grams": low.given,
                "corrected_grams": low.kept,
                "corrected_by_version": low.reversal.get("corrected_by_version", ""),
            }
            entry_id = ledger.correction_write_off_entry_id(low.reduction_id)
            entry, _ = self.appender.append(pool["_id"], entry_id, lambda state, draft=draft: dict(draft))
            out.append(entry)
        return out

    # redemption
    def redeem(
        self,
        account_id: str,
        grams: int,
        request_key: str,
        reward_id: str = "",
        *,
        item_id: str = "",
        settle: str = settlement.AT_ONCE,
        settle_by: str = "",
    ) -> tuple[dict, bool]:
        """Debit grams for a reward. (entry, replayed). The grams reach the bank pool when the
        redemption is settled (account.settlement): `settle="now"` by the next settlement pass
        (the outbox relay, within seconds); `"pending"` when `settle()` is called, or once
        `settle_by` (RFC 3339) has passed, unless `refund()` came first."""
        if settle not in (settlement.AT_ONCE, settlement.PENDING):
            raise InvalidRequest("settle must be now or pending", "invalid_settle")
        if not isinstance(grams, int) or isinstance(grams, bool) or grams <= 0:
            raise InvalidRequest("grams must be a positive integer", "invalid_grams")
        if not request_key or len(request_key) > 128:
            raise InvalidRequest("request_key must be 1..128 characters", "invalid_request_key")
        account = self._existing(account_id)
        if account["kind"] == "pool":
            raise InvalidRequest("the pool account cannot redeem", "invalid_account")
        entry_id = ledger.redemption_entry_id(account_id, request_key)
        walks: dict[int, provenance.Walk] = {}  # state seq decided against -> its walk

        def decide(state):
            if state["status"] != "open":
                raise AccountNotOpen(f"account is {state['status'] or 'not open'}")
            if state["balance"] < grams:
                raise InsufficientBalance(f"balance {state['balance']} g cannot cover {grams} g")
            reader = provenance.ChainReader(self.repo, account_id, state["seq"])
            start = provenance.cursor_of(state, reader)
            walked = walks[state["seq"]] = provenance.walk(reader, start, grams, self.consumed)
            return {
                **_owner(account),
                "type": ledger.REDEMPTION,
                "grams": -grams,
                "request_key": request_key,
                "reward_id": reward_id,
                "provenance": {"from": list(start), "to": list(walked.cursor), "completed": len(walked.completed)},
                "settle": settle,
                **({"settle_by": settle_by} if settle_by else {}),
                **({"item_id": item_id} if item_id else {}),
            }

        entry, created = self.appender.append(account_id, entry_id, decide)
        if (-entry["grams"], entry.get("reward_id", ""), entry.get("item_id", "")) != (grams, reward_id, item_id):
            raise RequestKeyReused("request_key was used for a different redemption")
        if created and entry["seq"] - 1 in walks:  # sealed: the credit under its cursor is locked now
            self.consumed.remember(account_id, walks[entry["seq"] - 1])
        self.settlement.hold(entry)
        return entry, not created

    # settlement (account.settlement)
    def settle(self, redemption_entry_id: str) -> str:
        """Settle a redemption now -> the fate that won ("settled", or "refunded" if first)."""
        fates, _ = self.settlement.settle_many([self._redemption(redemption_entry_id)])
        return fates[redemption_entry_id]

    def refund(self, redemption_entry_id: str, code: str) -> tuple[str, dict | None]:
        """Refund a redemption unless it was settled first -> (fate, refund entry or None)."""
        return self.settlement.refund(self._redemption(redemption_entry_id), code)

    def settle_redemptions(self, redemptions: list[dict]) -> list[dict]:
        """The relay's step for redemption entries it announces: settle those due at once
        (entries written before settlement existed too), list pending ones -> transfers made."""
        now = [r for r in redemptions if r.get("settle", settlement.AT_ONCE) == settlement.AT_ONCE]
        for r in redemptions:
            self.settlement.hold(r)
        return self.settlement.settle_many(now)[1]

    def settle_due(self, now: str | None = None) -> list[dict]:
        """Settle pending redemptions whose settle_by has passed -> transfers made."""
        return self.settlement.settle_many(self.settlement.due(now or ledger.utc_now_iso()))[1]

    def _redemption(self, entry_id: str) -> dict:
        entry = self.repo.get_entry(entry_id)
        if entry is None or entry["type"] != ledger.REDEMPTION:
            raise LookupError(entry_id)
        return entry


def _owner(account: dict) -> dict:
    return {"owner_pid": account["owner_pid"], "account_kind": account["kind"]}
