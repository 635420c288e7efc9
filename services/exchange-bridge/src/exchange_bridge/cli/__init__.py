"""Operator commands: `python -m exchange_bridge.cli.onboard`, `python -m exchange_bridge.cli.status`."""
