"""Operator command-line tools (the partner SDK, a library for partners, stays in ingest.sdk)."""
