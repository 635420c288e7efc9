"""Invariant 1 (exactly-once crediting) and "no silent drops" under real crashes.

A platform instance "chaos" (own vhost, databases, ports +2000) takes ~300 signed records
from two partners while calc and account are SIGKILLed mid-stream (twice each) and come back
under supervisord. Partners resend whatever was not answered, as the API contract says. Then
an auditor checks, from the databases, the gRPC API, the broker and the verifier: one
terminal outcome per accepted record, never two credits, none for refused records, balances
equal their entries, hash chains verify, every queue and dead-letter queue empty.
RabbitMQ/FerretDB restarts are in `make chaos` only: other suites share those servers.
"""

import time

import pytest

from carbon_dev.chaos.audit import Auditor
from carbon_dev.chaos.faults import Crasher
from carbon_dev.chaos.traffic import Traffic, plan, register, send_settled
from carbon_dev.instance import Instance

pytestmark = pytest.mark.e2e

RECORDS, CONSENTING, WITHOUT_CONSENT, BATCH = 300, 20, 2, 50
CRASHES = {1: "calc", 2: "account", 4: "calc", 5: "account"}  # batch number -> process


@pytest.fixture(scope="module")
def instance():
    instance = Instance("chaos", port_offset=2000)
    instance.reset()
    instance.start(timeout=180, progress=lambda line: None)
    yield instance
    instance.stop()


def test_every_accepted_record_is_decided_exactly_once_through_crashes(instance, capsys):
    log, auditor, traffic = [], Auditor(instance), Traffic()
    crasher = Crasher(instance, progress=log.append, backlog=lambda: auditor.backlog(traffic))
    clients, people = register(instance, CONSENTING, WITHOUT_CONSENT)
    records = plan(people, RECORDS)

    def inject(batches_sent):
        if batches_sent in CRASHES:
            crasher.crash(CRASHES[batches_sent])

    started = time.monotonic()
    send_settled(clients, records, traffic, batch_size=BATCH, on_batch=inject, deadline=started + 60)
    # a partner replaying batches it already had answers for: duplicates, nothing new
    replay = list(traffic.committed.values())[:40]
    again = Traffic()
    send_settled(clients, replay, again, batch_size=BATCH, deadline=time.monotonic() + 20)
    crasher.recover_all()
    report = auditor.settle(traffic, timeout=60, progress=log.append)

    with capsys.disabled():
        print(
            f"\n[chaos] {len(records)} records in {time.monotonic() - started:.1f} s; answers {traffic.answers}, "
            f"resent batches {traffic.resends}, connection errors {traffic.connection_errors}"
        )
        for kill in crasher.kills:
            print(
                f"[chaos] killed {kill.name} pid {kill.pid} with backlog {kill.backlog}; "
                f"back after {kill.back_after:.1f} s"
            )
        print(f"[chaos] {report.summary()}; verify: {report.verify_output}")
    assert len(crasher.kills) == len(CRASHES), "every planned crash happened mid-stream"
    assert all(k.back_after > 0 for k in crasher.kills), "every crashed process came back under a new pid"
    assert again.answers == {"duplicate": len(replay)}, again.answers
    assert set(traffic.refused.values()) >= {"consent_required"}, "some records must be refused (no consent)"
    assert report.committed + report.refused == len(records)
    assert report.ok, "\n".join(report.problems[:40])
    assert report.calc_reductions + report.calc_rejections == report.committed
    assert sum(report.decisions.values()) == report.calc_reductions
