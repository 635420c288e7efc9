"""The platform's clock: now in UTC, as a datetime or as the ISO 8601 "Z" text that is stored,
hashed and published.

Ledger entries and the bridge's records carry microseconds ("2026-11-29T08:00:00.123456Z");
the ledger's SM3 hash chain covers that text, so its shape must never change. Event envelopes
carry milliseconds, partner-facing times whole seconds: pass `timespec`.
"""

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_z(moment: datetime, timespec: str = "microseconds") -> str:
    """`moment` in UTC as ISO 8601 ending in "Z", always with the fraction `timespec` names
    ("microseconds": 6 digits, "milliseconds": 3, "seconds": none)."""
    return moment.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now_iso(timespec: str = "microseconds") -> str:
    """Now, as `iso_z` writes it (default "%Y-%m-%dT%H:%M:%S.%fZ", the ledger's posted_at)."""
    return iso_z(utc_now(), timespec)


def aware(moment: datetime) -> datetime:
    """A datetime read back from the store without a zone (pymongo's default) is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
