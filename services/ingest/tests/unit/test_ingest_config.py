"""Start-up fails fast, naming the missing or malformed secret."""

import pytest

from carbon_common.config import MissingSetting

from ingest.config import REQUIRED, load_settings

VALID = {
    "AMQP_URI": "pyamqp://x",
    "MONGO_URI": "mongodb://x",
    "PSEUDONYM_KEY": "11" * 32,
    "PLATFORM_SM2_PRIVATE_KEY": "22" * 32,
    "PLATFORM_SM2_PUBLIC_KEY": "33" * 64,
    "CONTACT_SM4_KEY": "44" * 16,
    "ADMIN_TOKEN": "t",
}


@pytest.mark.parametrize("name", REQUIRED)
def test_a_missing_setting_stops_start_up_naming_it(name, monkeypatch):
    for key in REQUIRED:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(MissingSetting) as err:
        load_settings({**VALID, name: ""})
    assert err.value.name == name


def test_a_malformed_key_stops_start_up_naming_it():
    with pytest.raises(SystemExit, match="CONTACT_SM4_KEY"):
        load_settings({**VALID, "CONTACT_SM4_KEY": "abcd"})
    with pytest.raises(SystemExit, match="PSEUDONYM_KEY"):
        load_settings({**VALID, "PSEUDONYM_KEY": "zz"})
    assert load_settings(VALID).mongo_database == "carbon_ingest"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, (None, 8)),  # None: one worker per usable CPU, at least 2
        ({"WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "6"}, (3, 6)),
        ({"WEB_CONCURRENCY": "3", "INGEST_WORKERS": "5", "GUNICORN_THREADS": "6", "INGEST_THREADS": "2"}, (5, 2)),
    ],
)
def test_gunicorn_workers_and_threads_come_from_the_environment(env, expected, monkeypatch, tmp_path):
    import os
    import runpy
    from pathlib import Path

    for name in ("INGEST_WORKERS", "WEB_CONCURRENCY", "INGEST_THREADS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    workers, threads = expected
    assert conf["threads"] == threads and conf["worker_class"] == "gthread"
    assert conf["workers"] == (workers or max(2, len(os.sched_getaffinity(0))))
