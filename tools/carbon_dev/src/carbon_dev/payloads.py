"""Event payloads one service sends another, for tests: one builder per payload, so the
services' suites agree on what a valid message looks like."""


def reduction(user_pid: str, n: int, grams: int, **overrides) -> dict:
    """A ReductionCalculated payload (calc -> account): record `n` of customer `user_pid`,
    a metro ride worth `grams`. Any field can be overridden (scenario, occurred_at, caps, …)."""
    doc = {
        "reduction_id": f"red-{user_pid}-{n}",
        "record_key": f"rec-{user_pid}-{n}",
        "revision": 0,
        "partner_id": "metro-sz",
        "partner_record_id": f"trip-{user_pid}-{n}",
        "user_pid": user_pid,
        "consent_id": "consent-1",
        "scenario": "metro_ride",
        "occurred_at": "2026-11-25T02:00:00Z",
        "grams": grams,
        "methodology_id": "metro_ride",
        "methodology_version": "1.0.0",
        "factor_set_id": "cn-transport",
        "factor_set_version": "2026.1",
        "factors": {"baseline_g_per_pkm": "90.1"},
        "inputs": {"distance_km": "12.4"},
        "baseline_g": "1117.24",
        "project_g": "1017.0",
        "caps": [],
        "dedup_key": "",
    }
    doc.update(overrides)
    return doc
