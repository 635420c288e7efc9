"""The registry's methodology catalogue: configured pairs, or the platform's methodology files."""

import pytest

from exchange_bridge.registry import catalogue


def test_pairs_from_text():
    assert catalogue.from_text(" metro_ride:1, bus_ride:2 ,") == {("metro_ride", "1"), ("bus_ride", "2")}
    with pytest.raises(ValueError):
        catalogue.from_text("metro_ride")


def test_the_platform_methodologies_are_the_default(monkeypatch):
    monkeypatch.delenv("REGISTRY_METHODOLOGIES", raising=False)
    monkeypatch.delenv("REGISTRY_METHODOLOGIES_DIR", raising=False)
    pairs = catalogue.configured()
    assert {("metro_ride", "1"), ("bus_ride", "1"), ("walking", "1")} <= pairs
    assert all(isinstance(m, str) and isinstance(v, str) for m, v in pairs)


def test_configuration_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_METHODOLOGIES", "rocket_ride:7")
    assert catalogue.configured() == {("rocket_ride", "7")}
    monkeypatch.delenv("REGISTRY_METHODOLOGIES")
    (tmp_path / "a.yml").write_text('kind: methodology\nid: tram_ride\nversion: "3"\n')
    (tmp_path / "b.yml").write_text("kind: factor_set\nid: grid\nversion: 1\n")
    monkeypatch.setenv("REGISTRY_METHODOLOGIES_DIR", str(tmp_path))
    assert catalogue.configured() == {("tram_ride", "3")}
    monkeypatch.setenv("REGISTRY_METHODOLOGIES_DIR", str(tmp_path / "none"))
    with pytest.raises(SystemExit):
        catalogue.configured()
