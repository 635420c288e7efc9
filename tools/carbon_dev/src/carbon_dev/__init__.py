"""Development tooling of the platform, installed only in the development venv (never in an
image: deploy/docker/Dockerfile installs carbon_common, carbon_proto and one service).

- `devstack`: the whole platform under supervisord (`make run`, `make stop`, e2e, chaos, bench)
- `testing`: the pytest plugin (root conftest.py) and polling/Jaeger/Mongo/AMQP test helpers
- `calc_fixtures`: methodology directories and calc payloads for tests and the bench
- `ledger_stress`: many writers on one ledger account, then the invariants (tests and bench)
- `bridge_demo`: the last act of `make run` (redemptions, the bank pool, an exchange batch)
"""
