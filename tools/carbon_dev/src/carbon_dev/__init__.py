"""Development tooling of the platform, installed only in the development venv (never in an
image: deploy/docker/Dockerfile installs carbon_common, carbon_proto and one service).

- `devstack`: the command line of `make run`, `make stop`, `make status` (the demo, where to look)
- `instance`: a platform instance under supervisord (`make run`, e2e, chaos, bench): its vhost,
  databases, ports, start/stop; `processes`: its process table, built from the chart's values
  (`chart_values`); `supervision`: supervisord's config and control
- `compose`: docker-compose.yml, generated from the chart's values (`make compose`)
- `testing`: the pytest plugin (root conftest.py) and polling/Jaeger/Mongo/AMQP test helpers
- `calc_fixtures`: methodology directories and calc payloads for tests and the bench
- `ledger_stress`: many writers on one ledger account, then the invariants (tests and bench)
- `ingest_demo`, `catalogue_demo`, `bridge_demo`: the demo of `make run` — a day of partner
  traffic and the programme households' readings; a catalogue reward redeemed and confirmed by
  its partner; redemptions, the bank pool, a batch issued in whole tonnes, units transferred and
  retired, a retirement certificate and its verification
"""
