"""Test helpers (also for other services' tests): a private, publishable copy of the methodology directory."""

import shutil
from datetime import datetime
from pathlib import Path
from textwrap import dedent

from calc.domain import Record
from calc.loader import PACKAGED_DIR, load_catalog


class MethodologyDir:
    def __init__(self, root: Path):
        self.root = root
        shutil.copytree(PACKAGED_DIR, root, ignore=shutil.ignore_patterns("schema"))

    def publish(self, filename: str, text: str) -> Path:
        path = self.root / filename
        path.write_text(dedent(text), encoding="utf-8")
        return path

    def derive(self, source: str, filename: str, **replacements: str) -> Path:
        """Publish a copy of an existing file with top-level `key: value` lines replaced."""
        lines = (self.root / source).read_text(encoding="utf-8").splitlines()
        for key, value in replacements.items():
            lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in lines]
            if not any(line.startswith(f"{key}:") for line in lines):
                lines.append(f"{key}: {value}")
        return self.publish(filename, "\n".join(lines) + "\n")

    def catalog(self):
        return load_catalog(self.root)


def record(scenario: str, occurred_at: str, user_pid: str = "u" * 64, **activity: str) -> Record:
    return Record(scenario, datetime.fromisoformat(occurred_at), activity, user_pid)


def behaviour(n: int, scenario: str = "metro_ride", occurred_at: str = "2026-03-02T08:15:00+08:00", **activity) -> dict:
    """A BehaviourReceived payload as ingest publishes it (n makes the ids unique)."""
    return {
        "record_key": f"{n:064x}",
        "partner_id": "metro-sz",
        "partner_record_id": f"trip-{n}",
        "user_pid": f"{n + 7:064x}",
        "consent_id": f"consent-{n}",
        "scenario": scenario,
        "occurred_at": occurred_at,
        "received_at": "2026-03-02T08:20:00Z",
        "activity": activity or {"distance_km": "12.4", "city": "shenzhen", "entry_station": "S01"},
    }
