"""Per-user caps of a methodology (pure): cap keys, usage and how many grams a record may earn.

Periods are calendar days/months in China Standard Time (UTC+8, no daylight saving), taken
from the behaviour's occurred_at. A cap key names one (scenario, scope, period) bucket of one
account; the account state carries [grams, count] used per key, so a cap is checked against
exactly the entries before the one being sealed — which is what makes caps hold under
concurrency (the seq insert fails if anyone appended in between).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

CST = timezone(timedelta(hours=8))
PERIODS = ("day", "month")
SCOPES = ("user_scenario", "bill_account")
# Usage of cap keys older than this (by period) is dropped from the state; a late record for
# such a period is checked against the entries themselves (slower, still exact).
RETENTION_DAYS = 70


class InvalidCap(ValueError):
    pass


@dataclass(frozen=True)
class Cap:
    period: str
    max_grams: int
    max_count: int
    scope: str = "user_scenario"
    scope_key: str = ""

    @classmethod
    def from_event(cls, doc: dict) -> "Cap":
        cap = cls(
            period=doc.get("period", ""),
            max_grams=int(doc.get("max_grams") or 0),
            max_count=int(doc.get("max_count") or 0),
            scope=doc.get("scope") or "user_scenario",
            scope_key=doc.get("scope_key") or "",
        )
        if cap.period not in PERIODS or cap.scope not in SCOPES or cap.max_grams < 0 or cap.max_count < 0:
            raise InvalidCap(f"invalid cap {doc!r}")
        if cap.scope == "bill_account" and not cap.scope_key:
            raise InvalidCap("a bill_account cap needs scope_key")
        return cap

    def as_doc(self) -> dict:
        return {
            "period": self.period,
            "max_grams": self.max_grams,
            "max_count": self.max_count,
            "scope": self.scope,
            "scope_key": self.scope_key,
        }


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {value!r}")
    return moment


def local_period(period: str, occurred_at: str) -> str:
    # CST is a whole-hour offset: the local day/month follows from the UTC hour alone
    if occurred_at.endswith("Z") and len(occurred_at) >= 13:
        return _local_period_of_hour(period, occurred_at[:13])
    local = parse_time(occurred_at).astimezone(CST)
    return local.strftime("%Y-%m-%d") if period == "day" else local.strftime("%Y-%m")


@lru_cache(maxsize=4096)
def _local_period_of_hour(period: str, utc_hour: str) -> str:
    """utc_hour: "YYYY-MM-DDTHH" of a UTC time (sealing runs this per entry: cached)."""
    local = datetime.strptime(utc_hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc).astimezone(CST)
    return local.strftime("%Y-%m-%d") if period == "day" else local.strftime("%Y-%m")


def cap_key(scenario: str, cap: Cap, occurred_at: str) -> str:
    scope = "user" if cap.scope == "user_scenario" else f"bill:{cap.scope_key}"
    return f"{scenario}|{scope}|{cap.period}:{local_period(cap.period, occurred_at)}"


def statement_month(occurred_at: str) -> str:
    return local_period("month", occurred_at)


def is_retained(key: str, posted_at: str) -> bool:
    return is_retained_after(key, retention_cutoff(posted_at))


def retention_cutoff(posted_at: str) -> tuple[str, str]:
    """(day, month) in CST below which cap usage is dropped from a state posted at posted_at."""
    if posted_at.endswith("Z") and len(posted_at) >= 13:
        return _cutoff_of_hour(posted_at[:13])
    cutoff = (parse_time(posted_at) - timedelta(days=RETENTION_DAYS)).astimezone(CST)
    return cutoff.strftime("%Y-%m-%d"), cutoff.strftime("%Y-%m")


@lru_cache(maxsize=1024)
def _cutoff_of_hour(utc_hour: str) -> tuple[str, str]:
    moment = datetime.strptime(utc_hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    cutoff = (moment - timedelta(days=RETENTION_DAYS)).astimezone(CST)
    return cutoff.strftime("%Y-%m-%d"), cutoff.strftime("%Y-%m")


def is_retained_after(key: str, cutoff: tuple[str, str]) -> bool:
    period_value = key.rsplit(":", 1)[1]
    return period_value >= (cutoff[0] if len(period_value) == 10 else cutoff[1])


@lru_cache(maxsize=256)
def previous_months(month: str, count: int) -> tuple[str, ...]:
    """`month` ("YYYY-MM") and the count-1 months before it (cached: pure, called per entry)."""
    year, mon = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{mon:02d}")
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return tuple(out)


@dataclass(frozen=True)
class Decision:
    credited: int
    binding: Cap | None  # the cap that cut the grams, if any


def evaluate(grams: int, caps: list[Cap], usage: dict[Cap, tuple[int, int]]) -> Decision:
    """Grams this record may earn given each cap's [grams, count] already used."""
    credited, binding = grams, None
    for cap in caps:
        used_grams, used_count = usage.get(cap, (0, 0))
        allowed = credited
        if cap.max_count and used_count >= cap.max_count:
            allowed = 0
        if cap.max_grams:
            allowed = min(allowed, max(cap.max_grams - used_grams, 0))
        if allowed < credited:
            credited, binding = allowed, cap
    return Decision(credited=credited, binding=binding)
