"""Fault injection is reproducible from its seed and configured by a spec."""

import pytest

from exchange_bridge.registry.faults import KINDS, Faults, parse_spec

SPEC = "latency=0.05,error5xx=0.05,timeout_after_commit=0.05,duplicate=0.05,reject=0.02"


def test_spec_names_each_kind_and_its_rate():
    assert parse_spec(SPEC) == {
        "latency": 0.05,
        "error5xx": 0.05,
        "timeout_after_commit": 0.05,
        "duplicate": 0.05,
        "reject": 0.02,
    }
    assert parse_spec("") == {kind: 0.0 for kind in KINDS}
    for bad in ("explode=0.1", "latency=2", "latency=-0.1", "latency=x"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_same_seed_same_fault_sequence():
    one, two, other = Faults(SPEC, seed=7), Faults(SPEC, seed=7), Faults(SPEC, seed=8)
    first = [one.decide() for _ in range(2000)]
    assert first == [two.decide() for _ in range(2000)]
    assert first != [other.decide() for _ in range(2000)]
    fired = sum(bool(d.delay) + bool(d.error) + d.timeout + d.duplicate + d.reject for d in first)
    assert 300 < fired < 600  # 22% of 2000 draws, give or take


def test_every_request_draws_the_same_amount_whatever_the_rates():
    """So changing one rate never shifts the stream the other kinds see."""
    quiet, loud = Faults("", seed=3), Faults("error5xx=1", seed=3)
    for _ in range(50):
        q, lo = quiet.decide(), loud.decide()
        assert not q.error and lo.error in (500, 502, 503)
    quiet.configure("reject=1")
    loud.configure("reject=1")
    assert [quiet.decide().reject for _ in range(5)] == [True] * 5


def test_reconfiguring_keeps_counters_and_refuses_bad_specs_whole():
    faults = Faults(SPEC, seed=1)
    faults.count("reject")
    with pytest.raises(ValueError):
        faults.configure("latency=0.5,bogus=1", seed=9)
    snap = faults.snapshot()
    assert snap["seed"] == 1 and snap["rates"]["latency"] == 0.05  # nothing changed
    faults.configure({"duplicate": 0.5}, seed=2, max_latency=0.01)
    snap = faults.snapshot()
    assert snap["rates"]["duplicate"] == 0.5 and snap["rates"]["latency"] == 0.0
    assert snap["injected"]["reject"] == 1 and snap["injected_total"] == 1 and snap["max_latency"] == 0.01
