"""Operations on an issued batch's units: transfer, retire, cancel (RPCs `transfer_units`,
`retire_units`, `cancel_units`).

Idempotent by the caller's request key: the key names one operation forever (`operations`,
`_id` = request key; the same key with another request is RequestKeyReused) and the
registry's operation id is derived from it, so a call repeated after a lost answer or a crash
finds the registry's record instead of moving units twice. The registry's signed record is
stored (`records`), the transition inserted (`<batch>:<state>:<operation>`), the operation
appended to the batch's `unit_ops` chain (what a certificate lists), then the event published.
A call that failed part-way is finished by calling it again with the same key.
"""

import re

from carbon_common.clock import utc_now_iso

from exchange_bridge import metrics, rules
from exchange_bridge.announce import unit_event
from exchange_bridge.errors import InvalidRequest, NotIssued, OperationRefused, OutcomeUnknown, RequestKeyReused
from exchange_bridge.registry_client import Rejected, Unknown

HOLDER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _text(name: str, value, limit: int = 200) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise InvalidRequest(f"{name} must be 1-{limit} characters")
    return value


class Units:
    def __init__(self, repo, registry, announcer, participant: str):
        self.repo, self.registry, self.announcer, self.participant = repo, registry, announcer, participant

    def transfer(self, batch_id: str, units: int, to_holder: str, request_key: str) -> dict:
        if not isinstance(to_holder, str) or not HOLDER.fullmatch(to_holder):
            raise InvalidRequest("to_holder must be a registry participant id")
        return self.operate("transfer", batch_id, units, request_key, to_holder=to_holder)

    def retire(self, batch_id: str, units: int, beneficiary: str, reason: str, request_key: str) -> dict:
        fields = {"beneficiary": _text("beneficiary", beneficiary), "reason": _text("reason", reason)}
        return self.operate("retire", batch_id, units, request_key, **fields)

    def cancel(self, batch_id: str, units: int, reason: str, request_key: str) -> dict:
        return self.operate("cancel", batch_id, units, request_key, reason=_text("reason", reason))

    def operate(self, kind: str, batch_id: str, units: int, request_key: str, **fields) -> dict:
        _text("request_key", request_key, 128)
        if type(units) is not int or units < 1:
            raise InvalidRequest("units must be a positive integer")
        batch = self.repo.batch(batch_id) if isinstance(batch_id, str) else None
        states = self.repo.transitions_of([batch_id])[batch_id] if batch else {}
        if batch is None or "issued" not in states:
            raise NotIssued(f"batch {batch_id} has no issued units at the bridge")
        client_id = rules.client_id(kind, request_key)
        wanted = {"kind": kind, "batch_id": batch_id, "units": units, **fields, "client_id": client_id}
        stored, _ = self.repo.add_operation({"_id": request_key, **wanted, "requested_at": utc_now_iso()})
        if any(stored.get(k) != v for k, v in wanted.items()) or set(stored) - set(wanted) - {"_id", "requested_at"}:
            raise RequestKeyReused(f"request_key {request_key!r} was used for another operation")
        op_id = f"{kind}:{self.participant}:{client_id}"
        record = self.repo.records_of([op_id]).get(op_id)
        if record is None:
            record = self.repo.add_record(self._call(kind, client_id, batch_id, units, fields))
        state = rules.UNIT_STATES[kind]
        transition, created = self.repo.add_transition(
            batch_id,
            state,
            {
                "at": record["at"],
                "record_id": record["op_id"],
                "request_key": request_key,
                "units": record["units"],
                "serial": record["serial"],
                "start": record["start"],
                "end": record["end"],
                "from_holder": record["from_holder"],
                "to_holder": record["to_holder"],
                "beneficiary": record["beneficiary"],
                "reason": record["reason"],
            },
            operation=client_id,
        )
        if created:
            metrics.TRANSITIONS.labels(state).inc()
        self.repo.add_unit_op(batch_id, record["op_id"], kind)
        event = unit_event(batch, transition)
        self.announcer.publish(batch, [event], skip=self.repo.published_of([event[1]]))
        return {
            "batch_id": batch_id,
            "state": state,
            "request_key": request_key,
            "record_id": record["op_id"],
            "units": record["units"],
            "serial": record["serial"],
            "start": record["start"],
            "end": record["end"],
            "to_holder": record["to_holder"],
            "at": record["at"],
            "record": record,
        }

    def _call(self, kind: str, client_id: str, batch_id: str, units: int, fields: dict) -> dict:
        try:
            if kind == "transfer":
                return self.registry.transfer(client_id, batch_id, units, fields["to_holder"])
            if kind == "retire":
                return self.registry.retire(client_id, batch_id, units, fields["beneficiary"], fields["reason"])
            return self.registry.cancel(client_id, batch_id, units, fields["reason"])
        except Rejected as refusal:
            metrics.REFUSALS.labels(refusal.code, "operation").inc()
            raise OperationRefused(refusal.code, refusal.reason) from None
        except Unknown as error:
            metrics.UNKNOWN.inc()
            raise OutcomeUnknown(f"{error}: call again with the same request_key") from None
