"""The exchange fault run, short (the long one: `make exchange-chaos`, scripts/exchange_chaos.py).

A platform instance "xchaos" (own vhost, databases, ports +4000) whose registry injects faults
from a seed (5xx, answers dropped after commit, requests delivered twice, batches stored as
rejected, latency) and whose bridge batches at most 3 reductions a batch, passes every second
and reconciles every 2 s. Waves of customers' redeemed reductions (8 groups) become batches
while the bridge is SIGKILLed every few seconds, mid-pass, and some units are transferred,
retired and cancelled through its RPCs. Then, from the outside (carbon_dev.chaos.exchange):
no double submission, no reduction in two batches, every tonne issued exactly once, every
redeemed reduction issued, written off or waiting below a tonne, reconciliation clean.
"""

import time

import pytest

from carbon_dev.chaos.exchange import COUNTED_FAULTS, ExchangeInstance, ExchangeRun, Settings, audit

pytestmark = pytest.mark.e2e

BRIDGE_ENV = {
    "BRIDGE_MIN_GRAMS": "1000000",
    "BRIDGE_MAX_LEAVES": "3",
    "BRIDGE_INTERVAL_SECONDS": "1",
    "BRIDGE_RECONCILE_SECONDS": "2",
    "BRIDGE_SUBMIT_ATTEMPTS": "4",
    "BRIDGE_SUBMIT_BACKOFF_SECONDS": "0.05",
    "BRIDGE_REGISTRY_TIMEOUT_SECONDS": "5",
}
REGISTRY_ENV = {
    "REGISTRY_FAULTS": "latency=0.2,error5xx=0.25,timeout_after_commit=0.15,duplicate=0.25,reject=0.1",
    "REGISTRY_FAULT_SEED": "20261207",
    "REGISTRY_FAULT_MAX_LATENCY": "0.02",
}
SETTINGS = Settings(
    waves=4, customers=16, pause=2.5, kill_every=4.0, unit_op_every=3, max_seconds=60, settle_seconds=90
)


@pytest.fixture(scope="module")
def instance():
    instance = ExchangeInstance("xchaos", port_offset=4000, bridge_env=BRIDGE_ENV, registry_env=REGISTRY_ENV)
    instance.reset()
    instance.start(timeout=180, progress=lambda line: None)
    yield instance
    instance.stop()


def test_batches_are_issued_exactly_once_through_registry_faults_and_bridge_kills(instance, capsys):
    log = []
    started = time.monotonic()
    run = ExchangeRun(instance, SETTINGS, say=log.append)
    outcome = run.run()
    report = audit(run)
    f = report.figures
    with capsys.disabled():
        print(f"\n[exchange-chaos] {len(log)} progress lines; last: {log[-1] if log else '-'}")
        print(
            f"[exchange-chaos] {outcome.waves} waves, {len(outcome.reductions)} reductions "
            f"({outcome.redeemed_grams} g) in {outcome.stream_seconds:.1f} s, settled in {outcome.settle_seconds:.1f} s; "
            f"faults {outcome.faults} in {outcome.requests} requests; "
            f"SIGKILLs {[(k.name, round(k.back_after, 1)) for k in run.crasher.kills]}; unit ops {outcome.unit_ops}"
        )
        print(f"[exchange-chaos] submissions {f['submissions']}; reductions {f['reductions']}; units {f['units']}")
        print(f"[exchange-chaos] transitions {f['transitions']}; reconcile {f['reconcile']}")
        print(
            f"[exchange-chaos] periodic reconciliations {f['periodic_reconciliations']}; total {time.monotonic() - started:.1f} s"
        )
    assert report.ok, "\n".join(report.problems[:40])
    assert f["submissions"]["double_submissions"] == 0 and f["reductions_in_two_batches"] == 0
    assert f["submissions"]["registry_issued"] >= 20, f["submissions"]
    assert sum(outcome.faults[k] for k in COUNTED_FAULTS) >= 25, outcome.faults
    assert all(outcome.faults[k] for k in COUNTED_FAULTS), "every kind of fault was injected"
    # kills follow the issued batches, whose count varies with the seeded faults: at least two
    assert len(run.crasher.kills) >= 2 and all(k.back_after > 0 for k in run.crasher.kills)
    assert f["reconcile"]["exit"] == 0
    assert f["periodic_reconciliations"]["agree"] >= 1 and f["periodic_reconciliations"]["differ"] == 0
