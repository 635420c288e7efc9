"""The exchange fault run: customers' redeemed reductions become batches at the registry while
the registry injects faults (REGISTRY_FAULTS, REGISTRY_FAULT_SEED: 5xx, answers dropped after
the work was committed, requests delivered twice, batches stored as rejected, latency) and the
bridge (and, in the long run, the registry) is SIGKILLed over and over; then an audit from the
outside. Used by `make exchange-chaos` (scripts/exchange_chaos.py) and, shorter, by `make test`
(tests/chaos/test_exchange_chaos.py).

The load: per wave, every group (methodology x vintage) gets a tonne or so of reductions split
over a few customers, published as calc's `reduction_calculated` (large-gram records: the
account credits them), then each customer redeems exactly what the wave credited (plain
Redeem: settled into the pool chains at once), so every reduction is completed and batched.
BRIDGE_MAX_LEAVES is small, so a group's queue makes several batches; units stay whole tonnes
(a batch under a tonne, with its carry, issues 0 units and carries its grams on).

Bridge passes are the bridge's own timer's (BRIDGE_INTERVAL_SECONDS small), so a SIGKILL lands
in the middle of one. Unit operations (transfer, retire, cancel one unit of some batches) go
through the bridge's RPCs with request keys, called again after an unknown outcome.

Two passes at once. The bridge is built for two passes at once (two instances), and its own
tests run them. Here they are avoided on purpose: the registry draws an injected `reject` per
request, so two deliveries of one new batch at the same instant may get different verdicts,
and the rejected delivery's batch document can win its insert after the other delivery linked
the group's chain and claimed the reductions. The registry then holds a rejected batch with a
chain link, and the group's next batch is refused `carried_mismatch` for ever (held). A real
registry's verdict depends on the batch only, so this is an artefact of the fault injection;
it is reported (docs/chaos.md, "The exchange fault run") for the registry to decide a rejection
per batch.

The audit (ExchangeAudit) reads the bridge's and the registry's databases directly:
  - no double submission: every batch the registry stored is one the bridge formed and sent,
    stored once; every registry claim of a reduction belongs to one issued batch, and each
    issued batch claims exactly its record count; one issuance link per batch;
  - no reduction in two batches (bridge: at most one issued batch, two only as a rejected
    attempt 1 and its attempt 2; registry claims = the bridge's issued reductions);
  - every tonne issued exactly once: per group the chain of issuance links is 1..n, each
    carries its predecessor's remainder, serial blocks are contiguous from 1 with no gap or
    overlap, and the group's units = floor(grams issued / 1e6);
  - every redeemed reduction is issued, written off (rejected twice) or still queued below the
    threshold (its grams = the bridge's pending grams);
  - `python -m exchange_bridge.cli.reconcile` finds nothing (and the bridge's periodic
    reconciliations during the run are counted from its log).
"""

import json
import os
import random
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

import requests
from nameko.exceptions import RemoteError, RpcTimeout
from nameko.standalone.rpc import ClusterRpcProxy

from carbon_common.clock import utc_now_iso
from carbon_common.events import EventPublisher
from carbon_common.mongo import client as mongo_client
from carbon_dev import payloads
from carbon_dev.chaos.faults import Crasher
from carbon_dev.instance import Instance
from carbon_dev.processes import ROOT, VENV_BIN

BRIDGE, REGISTRY = "exchange-bridge", "exchange-registry"
TONNE = 1_000_000
METHODOLOGIES = ("metro_ride", "bus_ride", "bike_ride", "walking")
RECEIVER = "exchange-chaos-receiver"  # a second registry participant: transfers go to it
COUNTED_FAULTS = ("error5xx", "timeout_after_commit", "duplicate", "reject")  # latency is not a fault here
UNIT_KINDS = ("retire", "transfer", "cancel")


class ExchangeInstance(Instance):
    """A platform instance whose bridge and registry take extra environment (fault rates, the
    seed, batch size, pass and reconciliation intervals)."""

    def __init__(self, name: str, port_offset: int, bridge_env: dict | None = None, registry_env: dict | None = None):
        super().__init__(name, port_offset)
        self.extra = {BRIDGE: dict(bridge_env or {}), REGISTRY: dict(registry_env or {})}

    def processes(self):
        out = super().processes()
        for process in out:
            process.env.update(self.extra.get(process.name, {}))
        return out


@dataclass
class Settings:
    waves: int = 6  # at least this many waves; more while a target below is not met
    customers: int = 24
    grams_per_group: int = 1_300_000  # per wave, about
    vintages: tuple = (2025, 2026)
    pause: float = 3.0  # seconds of bridge passes (its timer) after each wave's redemptions
    kill_every: float = 6.0  # seconds between SIGKILLs
    registry_every: int = 0  # every n-th SIGKILL hits the registry (0: the bridge only)
    unit_op_every: int = 3  # one unit operation per n batches issued with units
    min_faults: int = 0  # counted faults (5xx, timeout after commit, duplicate, reject)
    min_batches: int = 0  # batches issued
    max_seconds: float = 600.0  # the stream stops here whatever the targets
    settle_seconds: float = 180.0
    seed: int = 20261207


@dataclass
class Outcome:
    waves: int = 0
    reductions: dict = field(default_factory=dict)  # reduction id -> (grams, owner, group)
    redeemed_grams: int = 0
    unit_ops: dict = field(default_factory=dict)  # kind -> done
    unit_retries: int = 0
    rpc_retries: int = 0
    faults: dict = field(default_factory=dict)  # kind -> injected, over every registry process
    requests: int = 0
    stream_seconds: float = 0.0
    settle_seconds: float = 0.0


class Exchange:
    """Where the instance's bridge and registry are, and what the run needs of them."""

    def __init__(self, instance: Instance):
        processes = {p.name: p for p in instance.processes()}
        bridge, registry = processes[BRIDGE], processes[REGISTRY]
        self.instance, self.bridge_env = instance, bridge.env
        self.registry_url = bridge.env["REGISTRY_URL"]
        self.participant = bridge.env["BRIDGE_PARTICIPANT"]
        self.min_grams = int(bridge.env.get("BRIDGE_MIN_GRAMS", TONNE))
        self.admin = {"Authorization": f"Bearer {instance.secrets()['REGISTRY_ADMIN_TOKEN']}"}
        mongo = mongo_client(instance.mongo_uri)
        self.bridge_db = mongo[bridge.env["MONGO_DATABASE"]]
        self.registry_db = mongo[registry.env["REGISTRY_DB"]]
        self.metrics_url = f"http://{bridge.env['WEB_SERVER_ADDRESS']}/metrics"
        self.log = instance.dir / "logs" / f"{BRIDGE}.log"
        self.lifetimes: list[dict] = []  # fault counters of registry processes killed before

    def faults(self) -> dict:
        return requests.get(f"{self.registry_url}/v1/admin/faults", headers=self.admin, timeout=10).json()

    def set_faults(self, rates, seed: int | None = None) -> dict:
        body = {"rates": rates} if seed is None else {"rates": rates, "seed": seed}
        answer = requests.put(f"{self.registry_url}/v1/admin/faults", json=body, headers=self.admin, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def total_faults(self) -> tuple[dict, int]:
        """Injected faults by kind and bank requests, summed over every registry process of the run."""
        deadline = time.monotonic() + 60
        while True:  # the registry may be restarting after a SIGKILL
            try:
                now = self.faults()
                break
            except (requests.RequestException, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        kinds = {k: sum(f["injected"].get(k, 0) for f in [*self.lifetimes, now]) for k in now["injected"]}
        return kinds, sum(f["requests"] for f in [*self.lifetimes, now])

    def register_holder(self, participant: str) -> None:
        body = {"participant_id": participant, "name": participant}
        answer = requests.post(f"{self.registry_url}/v1/admin/participants", json=body, headers=self.admin, timeout=10)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"registering {participant}: {answer.status_code} {answer.text[:200]}")

    def onboarded(self) -> bool:
        answer = requests.get(
            f"{self.registry_url}/v1/admin/participants/{self.participant}", headers=self.admin, timeout=10
        )
        return answer.status_code == 200 and bool(answer.json().get("keys"))

    def issued_links(self) -> list[dict]:
        """The registry's issuance links of the bank (a scan: small, and this is an audit)."""
        return list(self.registry_db.issuances.find({"participant": self.participant}))

    def reconcile(self) -> tuple[int, dict | None, str]:
        """`python -m exchange_bridge.cli.reconcile` with the bridge's environment."""
        env = {
            **os.environ,
            **self.bridge_env,
            "AMQP_URI": self.instance.amqp_uri,
            "MONGO_URI": self.instance.mongo_uri,
        }
        env["OTEL_SERVICE_NAME"] = "exchange-reconcile"
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-m", "exchange_bridge.cli.reconcile", "--indent", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        try:
            report = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:
            report = None
        return result.returncode, report, result.stderr.strip()

    def periodic_reconciliations(self, since: str = "") -> dict:
        """The bridge's own reconciliation runs since `since` (UTC ISO: the log outlives resets),
        from its log lines."""
        counts = {"agree": 0, "differ": 0, "failed": 0}
        if not self.log.exists():
            return counts
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                if json.loads(line).get("ts", "") < since:
                    continue
            except ValueError:
                continue
            if "exchange reconciliation: registry, bridge and ledger agree" in line:
                counts["agree"] += 1
            elif "exchange reconciliation found differences" in line:
                counts["differ"] += 1
            elif "exchange reconciliation could not complete" in line:
                counts["failed"] += 1
        return counts

    def gauge(self, name: str, **labels) -> float | None:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                        return float(line.rsplit(" ", 1)[1])
        except OSError:
            return None
        return None


class Rpc:
    """nameko RPC to the instance (one proxy, this thread only), called again on a timeout: a
    SIGKILLed bridge's request is redelivered to its successor, whose answer may come late."""

    def __init__(self, amqp_uri: str, timeout: float = 20.0):
        self.proxy = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout)
        self.cluster = self.proxy.start()
        self.retries = 0

    def close(self) -> None:
        self.proxy.stop()

    def call(self, service: str, method: str, attempts: int = 6, **kwargs):
        for attempt in range(1, attempts + 1):
            try:
                return getattr(getattr(self.cluster, service), method)(**kwargs)
            except RpcTimeout:
                self.retries += 1
                if attempt == attempts:
                    raise


class ExchangeRun:
    def __init__(self, instance: ExchangeInstance, settings: Settings, say=print, watch: bool = False):
        """watch: time each restart in a thread (real threads: the long run only, as scripts/chaos.py)."""
        self.instance, self.settings, self.say = instance, settings, say
        self.ex = Exchange(instance)
        self.crasher = Crasher(instance, progress=say, backlog=self.backlog, watch=watch)
        self.started_at = utc_now_iso()
        self.random = random.Random(settings.seed)
        self.outcome = Outcome()
        self.last_kill = time.monotonic()
        self.operated: set[str] = set()  # batches a unit operation was done (or tried) on
        self.tag = f"{int(time.time()):x}"
        self.credited: dict[str, int] = {}  # customer -> grams credited so far

    # -- the run -------------------------------------------------------------------------
    def run(self) -> Outcome:
        ex = self.ex
        if not ex.onboarded():
            raise RuntimeError(f"{ex.participant} is not onboarded at the registry (Instance.start onboards it)")
        ex.register_holder(RECEIVER)
        self.rpc = Rpc(self.instance.amqp_uri)
        try:
            started = time.monotonic()
            while self._more(started):
                self.outcome.waves += 1
                self.wave(self.outcome.waves)
                self.step(self.settings.pause)
                self.unit_operations()
                self.progress(started)
            self.outcome.stream_seconds = time.monotonic() - started
            self.crasher.recover_all()
            self.outcome.faults, self.outcome.requests = ex.total_faults()
            ex.set_faults("")  # the end of the faults: what is left is settled cleanly
            settle_started = time.monotonic()
            self.settle()
            self.unit_operations(final=True)
            self.outcome.settle_seconds = time.monotonic() - settle_started
            self.outcome.rpc_retries = self.rpc.retries
        finally:
            self.rpc.close()
        return self.outcome

    def _more(self, started: float) -> bool:
        s = self.settings
        if time.monotonic() - started > s.max_seconds:
            self.say(f"stream stopped after {s.max_seconds:.0f} s (targets may be unmet: the audit says)")
            return False
        if self.outcome.waves < s.waves:
            return True
        faults, _ = self.ex.total_faults()
        counted = sum(faults.get(k, 0) for k in COUNTED_FAULTS)
        return counted < s.min_faults or len(self.ex.issued_links()) < s.min_batches

    def backlog(self) -> dict:
        links = self.ex.issued_links()
        return {"issued_batches": len(links), "units": sum(link["units"] for link in links)}

    def progress(self, started: float) -> None:
        faults, requests_seen = self.ex.total_faults()
        links = self.ex.issued_links()
        counted = sum(faults.get(k, 0) for k in COUNTED_FAULTS)
        self.say(
            f"wave {self.outcome.waves}: {len(self.outcome.reductions)} reductions redeemed "
            f"({self.outcome.redeemed_grams / TONNE:.1f} t); registry: {len(links)} batches issued, "
            f"{sum(link['units'] for link in links)} units; {counted} faults in {requests_seen} requests {faults}; "
            f"{len(self.crasher.kills)} SIGKILLs; unit ops {self.outcome.unit_ops} "
            f"({time.monotonic() - started:.0f} s)"
        )

    # -- load ----------------------------------------------------------------------------
    def customer(self, n: int) -> str:
        return f"xc-{self.tag}-{n:03d}"

    def wave(self, n: int) -> None:
        """Credit a tonne or so per group over a few customers, then each redeems what it got."""
        s = self.settings
        publisher = EventPublisher(self.instance.amqp_uri, "calc")
        earned: dict[str, int] = {}
        try:
            for methodology in METHODOLOGIES:
                for vintage in s.vintages:
                    total = int(s.grams_per_group * self.random.uniform(0.7, 1.3))
                    parts = self.random.randint(3, 5)
                    for k in range(parts):
                        grams = total // parts + (total % parts if k == 0 else 0)
                        owner = self.customer(self.random.randrange(s.customers))
                        m = len(self.outcome.reductions)
                        red = payloads.reduction(
                            owner,
                            m,
                            grams,
                            reduction_id=f"xc-{self.tag}-{m:06d}",
                            record_key=f"xc-rec-{self.tag}-{m:06d}",
                            scenario=methodology,
                            methodology_id=methodology,
                            methodology_version="1",
                            occurred_at=f"{vintage}-06-{1 + m % 28:02d}T10:00:00+08:00",
                            consent_id=f"consent-{owner}",
                        )
                        publisher.publish("reduction_calculated", red, event_id=red["reduction_id"])
                        group = f"{methodology}:1:{vintage}"
                        self.outcome.reductions[red["reduction_id"]] = (grams, owner, group)
                        earned[owner] = earned.get(owner, 0) + grams
        finally:
            publisher.close()
        for owner, grams in earned.items():
            self.credited[owner] = self.credited.get(owner, 0) + grams
        deadline = time.monotonic() + 60
        waiting = set(earned)
        while waiting:
            for owner in sorted(waiting):
                if self._credited(owner) >= self.credited[owner]:
                    waiting.discard(owner)
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"credits not posted within 60 s for {sorted(waiting)[:3]}")
            if waiting:
                time.sleep(0.2)
        for owner, grams in sorted(earned.items()):
            self.rpc.call(
                "account",
                "redeem",
                grams=grams,
                request_key=f"xc-{self.tag}-w{n}-{owner}",
                reward_id="exchange-chaos",
                owner_pid=owner,
            )
            self.outcome.redeemed_grams += grams

    def _credited(self, owner: str) -> int:
        try:
            return int(self.rpc.call("account", "get_totals", owner_pid=owner)["credited_grams"])
        except RemoteError as error:
            if error.exc_type == "LookupError":  # the account opens with its first credit
                return 0
            raise

    # -- the bridge ------------------------------------------------------------------------
    def step(self, seconds: float) -> None:
        """Let the bridge's timer run passes for a while; a SIGKILL lands at a random moment when
        one is due. Passes are only the timer's: see "Two passes at once" in the module doc."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if time.monotonic() - self.last_kill >= self.settings.kill_every:
                time.sleep(self.random.uniform(0.0, 0.7))
                self.kill()
            time.sleep(0.1)

    def kill(self) -> None:
        s, kills = self.settings, len(self.crasher.kills) + 1
        victim = REGISTRY if s.registry_every and kills % s.registry_every == 0 else BRIDGE
        if victim == REGISTRY:
            self.crasher._recovered(REGISTRY)  # its counters are read from the process now running
            self.ex.lifetimes.append(self.ex.faults())
        self.last_kill = time.monotonic()
        for attempt in range(3):  # supervisorctl may not answer a pid on a loaded machine
            try:
                self.crasher.crash(victim)
                return
            except RuntimeError as exc:
                if attempt == 2:
                    self.say(f"could not crash {victim}: {exc}")
                    if victim == REGISTRY:
                        self.ex.lifetimes.pop()  # its counters stay with the running process
                time.sleep(0.5)

    def unit_operations(self, final: bool = False) -> None:
        """One unit operation (retire, transfer, cancel in turn) for every n-th batch issued
        with units, through the bridge's RPCs; an unknown outcome is asked again with its key."""
        links = sorted(self.ex.issued_links(), key=lambda link: (link["group"], link["n"]))
        todo = [link for link in links if link["units"] >= 1 and link["batch_id"] not in self.operated]
        for link in todo:
            index = len(self.operated)
            self.operated.add(link["batch_id"])
            if index % self.settings.unit_op_every:
                continue
            kind = UNIT_KINDS[(index // self.settings.unit_op_every) % len(UNIT_KINDS)]
            key = f"xc-{self.tag}-{kind}-{link['batch_id'][:24]}"
            args = {
                "retire": {"beneficiary": "exchange chaos", "reason": "retired in the fault run"},
                "transfer": {"to_holder": RECEIVER},
                "cancel": {"reason": "cancelled in the fault run"},
            }[kind]
            for _ in range(12):
                try:
                    self.rpc.call(
                        "exchange_bridge", f"{kind}_units", batch_id=link["batch_id"], units=1, request_key=key, **args
                    )
                    self.outcome.unit_ops[kind] = self.outcome.unit_ops.get(kind, 0) + 1
                    break
                except RemoteError as error:
                    if error.exc_type not in ("OutcomeUnknown", "NotIssued"):
                        raise
                    self.outcome.unit_retries += 1  # same key again: the registry's record is found
                    time.sleep(0.3 if error.exc_type == "OutcomeUnknown" else 1.0)
            else:
                if final:
                    raise RuntimeError(f"{kind} of {link['batch_id']} never got an outcome")
                self.operated.discard(link["batch_id"])

    def settle(self) -> None:
        """Passes until every redeemed reduction is queued and every group's head is settled
        and not due (what is left waits below the threshold)."""
        deadline = time.monotonic() + self.settings.settle_seconds
        ids = list(self.outcome.reductions)
        while True:
            view = self.rpc.call("exchange_bridge", "overview")
            queued = sum(
                len(list(self.ex.bridge_db.candidates.find({"_id": {"$in": ids[i : i + 1000]}}, {"_id": 1})))
                for i in range(0, len(ids), 1000)
            )
            settled = all(
                g["head_state"] in ("", "issued", "written_off")
                and (g["pending_grams"] == 0 or g["pending_grams"] + g["carried_in_grams"] < self.ex.min_grams)
                for g in view["groups"]
            )
            if queued == len(ids) and settled:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not settled: {queued}/{len(ids)} queued, groups {view['groups']}")
            time.sleep(0.5)


# -- the audit ---------------------------------------------------------------------------------
@dataclass
class ExchangeAudit:
    figures: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    reconcile: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(run: ExchangeRun) -> ExchangeAudit:
    ex, out = run.ex, ExchangeAudit()
    problems, f = out.problems, out.figures
    # the bridge's records
    slots = list(ex.bridge_db.slots.find({}))
    batches = {d["_id"]: d for d in ex.bridge_db.batches.find({}, {"leaves": 1, "batch": 1, "slot": 1})}
    states: dict[str, set] = {}
    for t in ex.bridge_db.transitions.find({}, {"batch_id": 1, "state": 1}):
        states.setdefault(t["batch_id"], set()).add(t["state"])
    leaves = {b: json.loads(d["leaves"]) if isinstance(d["leaves"], str) else d["leaves"] for b, d in batches.items()}
    issued_at_bridge = {b for b, st in states.items() if "issued" in st}
    # the registry's
    reg_batches = {d["_id"]: d for d in ex.registry_db.batches.find({}, {"rejected": 1, "link_n": 1, "batch": 1})}
    links = list(ex.registry_db.issuances.find({}))
    claims = {d["_id"]: d["batch_id"] for d in ex.registry_db.reductions.find({}, {"batch_id": 1})}

    # 1. double submissions
    stray = sorted(set(reg_batches) - set(batches))
    unsent = sorted(b for b in reg_batches if b in batches and "submitted" not in states.get(b, set()))
    link_count: dict[str, int] = {}
    for link in links:
        link_count[link["batch_id"]] = link_count.get(link["batch_id"], 0) + 1
    twice_linked = sorted(b for b, n in link_count.items() if n > 1)
    rejected_linked = sorted(b for b in link_count if reg_batches.get(b, {}).get("rejected"))
    claims_of: dict[str, int] = {}
    for batch_id in claims.values():
        claims_of[batch_id] = claims_of.get(batch_id, 0) + 1
    bad_claims = sorted(
        b
        for b in set(claims_of) | set(link_count)
        if claims_of.get(b, 0) != reg_batches.get(b, {}).get("batch", {}).get("record_count", -1) or b not in link_count
    )
    double = len(stray) + len(unsent) + len(twice_linked) + len(rejected_linked) + len(bad_claims)
    for name, found in (
        ("batches at the registry the bridge never formed", stray),
        ("batches at the registry the bridge never marked submitted", unsent),
        ("batches linked into a group chain twice", twice_linked),
        ("rejected batches holding a chain link", rejected_linked),
        ("batches whose reduction claims are not exactly their leaves", bad_claims),
    ):
        if found:
            problems.append(f"double submission: {len(found)} {name}, e.g. {found[:3]}")
    submitted = sum(1 for b in batches if "submitted" in states.get(b, set()))
    f["submissions"] = {
        "bridge_formed": len(batches),
        "bridge_submitted": submitted,
        "registry_stored": len(reg_batches),
        "registry_issued": len(links),
        "registry_rejected": sum(1 for d in reg_batches.values() if d.get("rejected")),
        "double_submissions": double,
    }

    # 2. a reduction in at most one batch
    holders: dict[str, list[str]] = {}
    for batch_id, rows in leaves.items():
        for leaf in rows:
            holders.setdefault(leaf["reduction_id"], []).append(batch_id)
    twice_issued = sorted(r for r, held in holders.items() if sum(b in issued_at_bridge for b in held) > 1)
    slot_of = {s["batch_id"]: s for s in slots}
    beyond_retry = sorted(
        r
        for r, held in holders.items()
        if len(held) > 2
        or (
            len(held) == 2
            and not any(
                slot_of.get(b, {}).get("retry_of") in held and "released" in states.get(slot_of[b]["retry_of"], set())
                for b in held
            )
        )
    )
    issued_reductions = {r: b for r, held in holders.items() for b in held if b in issued_at_bridge}
    if twice_issued:
        problems.append(f"{len(twice_issued)} reductions issued in two batches, e.g. {twice_issued[:3]}")
    if beyond_retry:
        problems.append(f"{len(beyond_retry)} reductions in two batches (not a rejected attempt and its retry)")
    if claims != issued_reductions:
        diff = sorted(set(claims.items()) ^ set(issued_reductions.items()))
        problems.append(f"registry claims differ from the bridge's issued reductions: {len(diff)}, e.g. {diff[:3]}")
    f["reductions_in_two_batches"] = len(twice_issued) + len(beyond_retry)

    # 3. every tonne issued exactly once, per group
    by_group: dict[str, list[dict]] = {}
    for link in links:
        by_group.setdefault(link["group"], []).append(link)
    groups = {}
    for group, chain in sorted(by_group.items()):
        chain.sort(key=lambda link: link["n"])
        if [link["n"] for link in chain] != list(range(1, len(chain) + 1)):
            problems.append(f"{group}: issuance links are not 1..{len(chain)}")
        next_serial, previous = 1, None
        for link in chain:
            expected = (previous["batch_id"], previous["carried_out_grams"]) if previous else ("", 0)
            if (link["carried_from"], link["carried_in_grams"]) != expected:
                problems.append(f"{group} link {link['n']}: carries {link['carried_in_grams']} g, expected {expected}")
            units = (link["carried_in_grams"] + link["quantity_grams"]) // TONNE
            if (
                link["units"] != units
                or link["carried_out_grams"] != link["carried_in_grams"] + link["quantity_grams"] - units * TONNE
            ):
                problems.append(f"{group} link {link['n']}: units/remainder are not whole tonnes of its grams")
            if link["units"]:
                if (link["start"], link["end"]) != (next_serial, next_serial + link["units"] - 1):
                    problems.append(
                        f"{group} link {link['n']}: serials {link['start']}-{link['end']}, expected from {next_serial} (gap/overlap)"
                    )
                next_serial = link["end"] + 1
            previous = link
        grams = sum(link["quantity_grams"] for link in chain)
        units = sum(link["units"] for link in chain)
        if units != grams // TONNE:
            problems.append(f"{group}: {units} units for {grams} g (floor is {grams // TONNE})")
        groups[group] = {"batches": len(chain), "grams": grams, "units": units, "serials": f"1-{next_serial - 1}"}
    f["groups"] = groups
    f["units"] = sum(g["units"] for g in groups.values())
    f["issued_grams"] = sum(g["grams"] for g in groups.values())

    # 4. every redeemed reduction: issued, written off, or queued below the threshold
    ours = run.outcome.reductions
    written_off = {d["_id"] for d in ex.bridge_db.write_offs.find({}, {"_id": 1})}
    issued_ours = [r for r in ours if r in issued_reductions]
    off_ours = [r for r in ours if r in written_off]
    waiting = [r for r in ours if r not in issued_reductions and r not in written_off]
    f["reductions"] = {
        "redeemed": len(ours),
        "issued": len(issued_ours),
        "written_off": len(off_ours),
        "waiting": len(waiting),
        "waiting_grams": sum(ours[r][0] for r in waiting),
    }
    if set(issued_ours) & written_off:
        problems.append("reductions both issued and written off")
    pending = pending_grams(run)
    if pending != f["reductions"]["waiting_grams"]:
        problems.append(f"the bridge's pending grams {pending} are not the grams of the reductions waiting")
    transitions: dict[str, int] = {}
    for held in states.values():
        for state in held:
            transitions[state] = transitions.get(state, 0) + 1
    f["transitions"] = transitions

    # 5. reconciliation, from the CLI, and the bridge's periodic runs during the run
    code, report, stderr = ex.reconcile()
    out.reconcile = report
    f["reconcile"] = {
        "exit": code,
        "summary": stderr.splitlines()[-1] if stderr else "",
        "seconds": report and report["seconds"],
        "cost": report and report["cost"],
        "in_flight": report and len(report["in_flight"]),
    }
    if code != 0:
        problems.append(f"reconciliation exit {code}: {stderr[-500:]}")
        if report:
            problems.extend(json.dumps(d)[:300] for d in report["differences"][:10])
    f["periodic_reconciliations"] = ex.periodic_reconciliations(since=run.started_at)
    return out


def pending_grams(run: ExchangeRun) -> int:
    view = Rpc(run.instance.amqp_uri)
    try:
        groups = view.call("exchange_bridge", "overview")["groups"]
    finally:
        view.close()
    return sum(g["pending_grams"] for g in groups)
