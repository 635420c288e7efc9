"""Partner SDK: sign (and optionally encrypt) requests to the ingest API and send records."""

from ingest.sdk.client import IngestClient, SendTotals

__all__ = ["IngestClient", "SendTotals"]
