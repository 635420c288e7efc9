"""The faithful registry of the emissions exchange (ADR 0005 §4-6): bank onboarding and keys,
SM2-signed batch submission, verification, issuance of whole-tonne serial blocks, transfer,
retirement and cancellation, every transition a registry-signed record, persisted in its own
database, with faults on command. Run: `python -m exchange_bridge.registry`. API:
docs/registry-api.md and docs/registry-openapi.yaml.
"""

from exchange_bridge.registry.app import create_app
from exchange_bridge.registry.faults import Faults

__all__ = ["Faults", "create_app"]
