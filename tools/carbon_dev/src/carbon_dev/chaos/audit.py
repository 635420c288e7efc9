"""The auditor: from the outside (databases read directly, the gRPC API, the broker, the
verifier CLI), does every record the partners were told `accepted` have exactly one terminal
outcome, and nothing else have any?

Terminal outcome of a committed record (record_key K, reduction_id R = SM3(K ":0")):
  calc   `outcomes` {_id: R, kind: "rejection"}          -> a recorded rejection, no ledger entry
  calc   `outcomes` {_id: R, kind: "reduction"}  and
  account `entries` {_id: SM3("credit:" R), type: credit | capped | declined}  -> one decision
"""

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

import grpc
from kombu import Connection

from account import ledger
from account.grpc_paging import all_accounts
from account.repository import entry_of
from calc.repository import CalcRepository
from calc.schemas import reduction_id
from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common import topology
from carbon_dev.processes import ROOT, VENV_BIN
from carbon_common.mongo import client as mongo_client

DECISIONS = (ledger.CREDIT, ledger.CAPPED, ledger.DECLINED)
RABBIT_AUTH = {"authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="}
# the management API's message counts are sampled every 5 s: "drained" must hold longer than that
# (a message being handled is unacked, not ready: one look can miss it, the next sample shows it)
SETTLED_FOR_SECONDS = 6.0


@dataclass
class Audit:
    committed: int = 0
    refused: int = 0
    calc_reductions: int = 0
    calc_rejections: int = 0
    decisions: dict = field(default_factory=dict)  # entry type -> count (credit/capped/declined)
    credited_grams: int = 0
    pending: int = 0  # committed records without a terminal outcome yet
    unpublished: int = 0  # ledger entries whose events the outbox has not relayed
    queues: dict = field(default_factory=dict)  # queue -> messages (non-zero only)
    accounts: int = 0
    verify_output: str = ""
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        d = self.decisions
        return (
            f"committed {self.committed} (refused at intake {self.refused}); calc: {self.calc_reductions} "
            f"reductions, {self.calc_rejections} rejections; ledger: {d.get('credit', 0)} credits "
            f"({self.credited_grams} g), {d.get('capped', 0)} capped, {d.get('declined', 0)} declined; "
            f"{self.accounts} accounts; pending {self.pending}; unpublished entries {self.unpublished}; queues {self.queues or 'empty'}; "
            f"{len(self.problems)} problems"
        )


class Auditor:
    def __init__(self, instance):
        self.instance = instance
        mongo = mongo_client(instance.mongo_uri)
        self.outcomes = mongo[f"carbon_{instance.name}_calc"]["outcomes"]
        self.entries = mongo[f"carbon_{instance.name}_account"]["entries"]

    # --- the broker ------------------------------------------------------------------------
    def queue_depths(self) -> dict[str, int]:
        """Messages per handler, retry and dead-letter queue (exact ready counts over AMQP,
        plus the management API's ready+unacked, which lags a few seconds)."""
        depths = {}
        with Connection(self.instance.amqp_uri, connect_timeout=5) as conn:
            channel = conn.channel()
            for route in topology.ROUTES:
                for queue, _ in topology.route_queues(route):
                    _, ready, _ = channel.queue_declare(queue=queue.name, passive=True)
                    depths[queue.name] = ready
        request = urllib.request.Request(
            f"http://127.0.0.1:15672/api/queues/{self.instance.vhost}?columns=name,messages", headers=RABBIT_AUTH
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            for queue in json.load(response):
                if queue["name"] in depths:
                    depths[queue["name"]] = max(depths[queue["name"]], queue.get("messages") or 0)
        return depths

    def dead_letters(self, limit: int = 5) -> list[str]:
        """What the operator would see in each non-empty DLQ (messages stay parked)."""
        out = []
        for name, count in self.queue_depths().items():
            if name.endswith(".dlq") and count:
                body = json.dumps({"count": limit, "ackmode": "ack_requeue_true", "encoding": "auto"}).encode()
                request = urllib.request.Request(
                    f"http://127.0.0.1:15672/api/queues/{self.instance.vhost}/{name}/get",
                    data=body,
                    method="POST",
                    headers={**RABBIT_AUTH, "content-type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    for message in json.load(response):
                        error = (message.get("properties", {}).get("headers") or {}).get("x-carbon-error", "")
                        out.append(f"{name} ({count}): {error} | {message.get('payload', '')[:200]}")
        return out

    def backlog(self, traffic) -> dict[str, int]:
        """Committed records calc has not decided yet, and calc reductions the ledger has not."""
        decided = self.outcomes.count_documents({})
        reductions = self.outcomes.count_documents({"kind": "reduction"})
        posted = self.entries.count_documents({"type": {"$in": list(DECISIONS)}})
        return {"calc": len(traffic.committed) - decided, "account": reductions - posted}

    # --- the books -------------------------------------------------------------------------
    def audit(self, traffic, final: bool = True) -> Audit:
        report = Audit(committed=len(traffic.committed), refused=len(traffic.refused))
        outcomes = {d["_id"]: CalcRepository._decode(d) for d in self.outcomes.find({})}
        by_key: dict[str, list[dict]] = {}
        for entry in map(entry_of, self.entries.find({"type": {"$in": list(DECISIONS)}})):
            by_key.setdefault(entry.get("record_key", ""), []).append(entry)
            report.decisions[entry["type"]] = report.decisions.get(entry["type"], 0) + 1
            report.credited_grams += entry["grams"] if entry["type"] == ledger.CREDIT else 0
        problems = report.problems
        for key in traffic.committed:
            rid = reduction_id(key, 0)
            outcome, entries = outcomes.get(rid), by_key.get(key, [])
            if outcome is None:
                report.pending += 1
                continue
            if outcome["kind"] == "rejection":
                report.calc_rejections += 1
                if entries:
                    problems.append(f"record {key}: rejected by calc yet {len(entries)} ledger decision(s)")
                continue
            report.calc_reductions += 1
            if not entries:
                report.pending += 1
            elif len(entries) > 1:
                problems.append(
                    f"record {key}: {len(entries)} ledger decisions "
                    f"{[(e['type'], e['grams'], e['_id'][:12]) for e in entries]}"
                )
            elif entries[0]["_id"] != ledger.credit_entry_id(rid):
                problems.append(f"record {key}: decision {entries[0]['_id']} is not the entry of reduction {rid}")
            elif entries[0].get("requested_grams") != int(outcome["payload"]["grams"]):
                problems.append(
                    f"record {key}: ledger requested {entries[0].get('requested_grams')} g, "
                    f"calc computed {outcome['payload']['grams']} g"
                )
        for key, entries in by_key.items():
            if key not in traffic.committed:
                problems.append(
                    f"record {key or '?'} was never accepted yet has {len(entries)} ledger decision(s)"
                    + (" (refused at intake: " + traffic.refused[key] + ")" if key in traffic.refused else "")
                )
        strays = [d["record_key"] for d in outcomes.values() if d.get("record_key") not in traffic.committed]
        if strays:
            problems.append(f"{len(strays)} calc outcomes for records never accepted, e.g. {strays[:3]}")
        report.unpublished = self.entries.database["outbox"].count_documents({})
        report.queues = {name: n for name, n in self.queue_depths().items() if n}
        if final:
            self._final_checks(report)
        return report

    def _final_checks(self, report: Audit) -> None:
        problems = report.problems
        if report.pending:
            problems.append(f"{report.pending} accepted records have no terminal outcome (silently dropped?)")
        if report.unpublished:
            problems.append(
                f"{report.unpublished} outbox markers left: entries whose events were never confirmed published"
            )
        if report.queues:
            problems.append(f"queues not drained: {report.queues}")
            problems.extend(f"dead-lettered: {line}" for line in self.dead_letters())
        self._balances(report)
        result = subprocess.run(
            [f"{VENV_BIN}/python", "-m", "account.cli.verify"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env={
                **os.environ,
                "MONGO_URI": self.instance.mongo_uri,
                "MONGO_DATABASE": f"carbon_{self.instance.name}_account",
            },
        )
        report.verify_output = (result.stdout.strip().splitlines() or [result.stderr.strip()])[-1]
        if result.returncode != 0:
            problems.append(f"account.verify failed: {result.stdout[-2000:]}{result.stderr[-1000:]}")

    def _balances(self, report: Audit) -> None:
        """Every balance the gRPC API reports equals the sum of that account's entries."""
        sums: dict[str, int] = {}
        for entry in self.entries.find({}, {"account_id": 1, "grams": 1}):
            sums[entry["account_id"]] = sums.get(entry["account_id"], 0) + entry["grams"]
        with grpc.insecure_channel(self.instance.address(50051)) as channel:
            stub = pb_grpc.AccountServiceStub(channel)
            accounts = all_accounts(stub, timeout=30)
            totals = stub.GetTotals(pb.GetTotalsRequest(), timeout=30)
        report.accounts = len(accounts)
        for account in accounts:
            if account.balance_grams != sums.get(account.account_id, 0):
                report.problems.append(
                    f"account {account.account_id}: gRPC balance {account.balance_grams} g, "
                    f"entries sum to {sums.get(account.account_id, 0)} g"
                )
        if set(sums) - {a.account_id for a in accounts}:
            report.problems.append(
                f"entries for accounts the API does not list: {sorted(set(sums) - {a.account_id for a in accounts})[:3]}"
            )
        if totals.credited_grams != report.credited_grams:
            report.problems.append(
                f"gRPC totals credited {totals.credited_grams} g, credit entries sum to {report.credited_grams} g"
            )

    def settle(self, traffic, timeout: float, progress=lambda line: None) -> Audit:
        """Poll until every committed record has its terminal outcome and every queue is empty, and
        has stayed so for SETTLED_FOR_SECONDS, then run the final audit (also when the deadline
        passed: it then says what is missing)."""
        deadline, started, settled_since = time.monotonic() + timeout, time.monotonic(), None
        while time.monotonic() < deadline:
            report = self.audit(traffic, final=False)
            progress(
                f"settling: {report.committed - report.pending}/{report.committed} records have their outcome, "
                f"{report.unpublished} entries await the outbox, queues {report.queues or 'empty'} ({time.monotonic() - started:.0f} s)"
            )
            if report.pending or report.queues or report.unpublished:
                settled_since = None
            elif settled_since is None:
                settled_since = time.monotonic()
            elif time.monotonic() - settled_since >= SETTLED_FOR_SECONDS:
                break
            time.sleep(1)
        return self.audit(traffic, final=True)
