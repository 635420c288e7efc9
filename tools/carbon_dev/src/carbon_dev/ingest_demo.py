"""Demo traffic for `make run`: a bank app, two partners, consents, a realistic day, and the
monthly meter readings of the households in the utility's energy-saving programme.

    python -m carbon_dev.ingest_demo --base-url http://127.0.0.1:8080 --admin-token … --customers 50 --records 2000 --households 40

Re-runnable: demo keys are derived from fixed seeds (public demo material, never production
keys), so registration and consents are idempotent, and the same day's records come back as
duplicates. The day is yesterday (Asia/Shanghai), compressed into the minutes after the demo's
consents were granted (`after_consent`): ingest counts a record only if it happened while the
customer's consent was valid, and a re-run finds the same consents, so the same times.

The households (`--households`, their own customers, consenting to demo-grid only) each send one
household-electricity reading of a 30-day period against their baseline: tens of kilograms each
(`household_readings`), so together they make whole tonnes of one methodology and vintage — what
the exchange issues units for (carbon_dev.bridge_demo). A reading's record id names the household
and the month of its consent: a re-run sends the same readings again (duplicates).
"""

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from carbon_common import gm
from carbon_common.clock import iso_z, utc_now
from carbon_common.config import setting
from carbon_common.gm.curve import N
from carbon_common.scenarios import FieldSpec, scenarios as scenario_contract

from ingest.cli.admin import AdminClient
from ingest.sdk.client import IngestClient, SendTotals, progress_line

CST = timezone(timedelta(hours=8))
# The customers are people: the individual-scope scenarios of the contract (an enterprise-scope
# one, e.g. green_electricity_office, earns only for enterprise accounts).
TRAVEL = ["metro_ride", "bus_ride", "bike_ride", "walking"]
HOME = ["utility_bill_payment", "e_statement", "ev_charging", "household_electricity"]
PARTNERS = {
    "demo-maas": ("Demo city MaaS (metro, bus, bike, steps)", TRAVEL),
    "demo-grid": ("Demo utility and e-billing", HOME),
}
WEIGHTS = {
    "metro_ride": 40,
    "bus_ride": 20,
    "bike_ride": 12,
    "walking": 8,
    "utility_bill_payment": 6,
    "e_statement": 6,
    "ev_charging": 5,
    "household_electricity": 3,
}
STATIONS = [f"S{n:02d}" for n in range(1, 40)]
# Which fields a scenario has, which are required and what ranges ingest accepts are the scenario
# contract's (carbon_common.scenarios); the demo only chooses realistic values inside it, and
# tools/carbon_dev/tests/test_ingest_demo.py proves that ingest accepts every record it generates.
# (scenario, field) -> (low, high, decimal places) narrower than the contract's range:
NUMBERS = {
    ("metro_ride", "distance_km"): ("2", "35", 1),
    ("bus_ride", "distance_km"): ("1", "18", 1),
    ("bike_ride", "distance_km"): ("0.5", "8", 2),
    ("walking", "steps"): ("2000", "18000"),
    ("utility_bill_payment", "amount_fen"): ("3000", "40000"),
    ("ev_charging", "kwh"): ("8", "60", 2),
    ("household_electricity", "kwh"): ("150", "320", 1),
    ("household_electricity", "baseline_kwh"): ("300", "300", 0),
    ("household_electricity", "period_days"): ("30", "30"),
}
# field -> (rng, customer number) -> a value matching the contract's pattern
TEXTS = {
    "city": lambda rng, customer: "shenzhen",
    "region": lambda rng, customer: "south",
    "entry_station": lambda rng, customer: rng.choice(STATIONS),
    "exit_station": lambda rng, customer: rng.choice(STATIONS),
    "line": lambda rng, customer: f"B{rng.randint(1, 380)}",
    "bill_account": lambda rng, customer: f"EL{customer[-6:]}",
    "statement_id": lambda rng, customer: f"ST{customer[-6:]}{rng.randint(1, 12):02d}",
    "station_id": lambda rng, customer: f"EV{rng.randint(1, 300)}",
}


def demo_key(name: str) -> tuple[str, str]:
    """A fixed key pair per demo client (so re-registration is idempotent)."""
    d = int(gm.sm3_hex(f"carbon-demo-key:{name}".encode()), 16) % (N - 2) + 1
    private = f"{d:064x}"
    return private, gm.public_key_of(private)


def customers(count: int) -> list[str]:
    return [f"62220000{n:08d}" for n in range(1, count + 1)]


HOUSEHOLD_PARTNER = "demo-grid"
HOUSEHOLDS = 48
# A programme household: metered kWh over 30 days against the baseline the utility computed for
# it (the Shenzhen rule: its own trailing mean), both inside the methodology's plausible ranges.
HOUSEHOLD_BASELINE_KWH = ("440", "480")
HOUSEHOLD_METERED_KWH = ("250", "330")


def households(count: int = HOUSEHOLDS) -> list[str]:
    """The customer numbers of the programme's households (distinct from `customers`)."""
    return [f"62228800{n:08d}" for n in range(1, count + 1)]


def household_readings(numbers: list[str], at: datetime) -> list[dict]:
    """One household_electricity record per household: a 30-day period ending at `at`, the
    metered kWh 110-230 below the baseline (region south: Shenzhen). Deterministic for (numbers,
    the month of `at`): a re-run sends the same records."""
    rng = random.Random(f"households:{len(numbers)}")
    records = []
    for number in numbers:
        baseline = Decimal(rng.randint(*(int(x) * 10 for x in HOUSEHOLD_BASELINE_KWH))) / 10
        metered = Decimal(rng.randint(*(int(x) * 10 for x in HOUSEHOLD_METERED_KWH))) / 10
        records.append(
            {
                "record_id": f"meter-{at.astimezone(CST):%Y%m}-{number}",
                "customer_ref": number,
                "scenario": "household_electricity",
                "occurred_at": iso_z(at, "seconds"),
                "activity": {
                    "kwh": f"{metered:.1f}",
                    "baseline_kwh": f"{baseline:.1f}",
                    "region": "south",
                    "period_days": 30,
                },
            }
        )
    return records


def _moment(rng: random.Random, day_start: datetime) -> datetime:
    """Commute peaks at 08:00 and 18:00 local time, some midday traffic."""
    hour = rng.choice([rng.gauss(8, 1), rng.gauss(18, 1.2), rng.uniform(6, 23)])
    return day_start + timedelta(hours=min(max(hour, 0.0), 23.99))


def _number(rng: random.Random, spec: FieldSpec, low: str | None = None, high: str | None = None, places: int = 2):
    """A value in [low, high] (default: the contract's range) with `places` decimals; integers
    as JSON numbers, decimals as decimal strings, as partners send them."""
    places = 0 if spec.type == "integer" else places
    step = Decimal(1).scaleb(-places)
    lowest = Decimal(low) if low is not None else spec.low + (step if spec.low_open else 0)
    highest = Decimal(high) if high is not None else spec.high
    value = Decimal(rng.randint(int(lowest / step), int(highest / step))) * step
    return int(value) if spec.type == "integer" else f"{value:.{places}f}"


def _activity(rng: random.Random, scenario: str, customer: str) -> dict:
    """Every field of the scenario in the contract (optional ones too): a realistic value where
    the demo has one (NUMBERS, TEXTS), else a number in the contract's range."""
    activity = {}
    for name, spec in scenario_contract()[scenario].items():
        if spec.numeric:
            activity[name] = _number(rng, spec, *NUMBERS.get((scenario, name), ()))
        elif name in TEXTS:
            activity[name] = TEXTS[name](rng, customer)
        else:
            raise LookupError(f"the demo has no value for {scenario}.{name}: add one to TEXTS")
    return activity


def _bad(activity: dict, scenario: str) -> dict:
    """A record as real feeds sometimes send: a quantity far out of range, or a computed value."""
    numbers = [spec for spec in scenario_contract()[scenario].values() if spec.numeric]
    if numbers:
        return {**activity, numbers[0].name: str(numbers[0].high * 5)}
    return {**activity, "reduction_g": 9}


def day_of_records(customer_list: list[str], count: int, day: datetime) -> dict[str, list[dict]]:
    """Deterministic for (customers, count, day): a re-run sends the very same records."""
    rng = random.Random(f"{day.date()}:{len(customer_list)}:{count}")
    scenarios, weights = zip(*WEIGHTS.items())
    out = {partner: [] for partner in PARTNERS}
    for n in range(count):
        scenario = rng.choices(scenarios, weights)[0]
        customer = rng.choice(customer_list)
        activity = _activity(rng, scenario, customer)
        if rng.random() < 0.01:  # a few bad records, as real feeds have
            activity = _bad(activity, scenario)
        partner = next(p for p, (_, allowed) in PARTNERS.items() if scenario in allowed)
        out[partner].append(
            {
                "record_id": f"{day:%Y%m%d}-{len(customer_list)}x{count}-{n:06d}",
                "customer_ref": customer,
                "scenario": scenario,
                "occurred_at": iso_z(_moment(rng, day), "seconds"),
                "activity": activity,
            }
        )
    for records in out.values():
        records.sort(key=lambda r: r["occurred_at"])
    return out


CONSENTED_SPAN = timedelta(seconds=240)  # ingest takes occurred_at up to 300 s ahead of its clock


def after_consent(plan: dict[str, list[dict]], day: datetime, start: datetime, span=CONSENTED_SPAN) -> dict:
    """A day's records moved into [start, start + span), each in proportion to its time of day
    (order and shape of the day kept). `start`: when the last consent the records rely on was
    granted — ingest refuses a record from before its consent (`outside_consent`), and a
    behaviour of yesterday cannot have happened under a consent granted today."""
    moved = {}
    for partner_id, records in plan.items():
        moved[partner_id] = []
        for record in records:
            at = datetime.fromisoformat(record["occurred_at"].replace("Z", "+00:00"))
            share = min(max((at - day) / timedelta(days=1), 0.0), 1.0)
            moved[partner_id].append({**record, "occurred_at": iso_z(start + share * span, "seconds")})
    return moved


def _ok(response, what):
    if response.status_code not in (200, 201):
        raise SystemExit(f"{what} failed: {response.status_code} {response.text[:300]}")
    return response.json()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m carbon_dev.ingest_demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--admin-token", default=setting("ADMIN_TOKEN", ""))
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--households", type=int, default=HOUSEHOLDS, help="households of the energy-saving programme (0: none)"
    )
    args = parser.parse_args(argv)
    if not args.admin_token:
        parser.error("--admin-token or ADMIN_TOKEN is required")
    admin = AdminClient(args.base_url, args.admin_token)
    print(f"[demo] registering the demo bank app and partners at {args.base_url}")
    bank_private, bank_public = demo_key("demo-bank-app")
    _ok(
        admin.register("demo-bank-app", "Demo bank app", "bank_app", [], 0, [("demo-bank-app-k1", bank_public)]),
        "register bank app",
    )
    clients = {}
    for partner_id, (name, scenarios) in PARTNERS.items():
        private, public = demo_key(partner_id)
        _ok(
            admin.register(partner_id, name, "data_partner", scenarios, 0, [(f"{partner_id}-k1", public)]),
            f"register {partner_id}",
        )
        clients[partner_id] = IngestClient(args.base_url, partner_id, f"{partner_id}-k1", private)
    bank = IngestClient(args.base_url, "demo-bank-app", "demo-bank-app-k1", bank_private)
    people = customers(args.customers)
    granted = []
    for n, customer in enumerate(people, 1):
        for partner_id, (_, scenarios) in PARTNERS.items():
            # a fixed expiry per ref keeps the consent body identical on re-runs
            consent = _ok(
                bank.record_consent(
                    f"demo-{customer}-{partner_id}",
                    customer,
                    partner_id,
                    scenarios,
                    "low-carbon rewards (demo)",
                    _fixed_expiry(),
                ),
                "record consent",
            )
            granted.append(consent["granted_at"])
        sys.stderr.write(f"\r[demo] consents recorded for {n}/{len(people)} customers")
    sys.stderr.write("\n")
    homes, home_granted = households(args.households), []
    for n, number in enumerate(homes, 1):
        consent = _ok(
            bank.record_consent(
                f"demo-{number}-{HOUSEHOLD_PARTNER}",
                number,
                HOUSEHOLD_PARTNER,
                ["household_electricity"],
                "energy-saving programme rewards (demo)",
                _fixed_expiry(),
            ),
            "record consent",
        )
        home_granted.append(consent["granted_at"])
        sys.stderr.write(f"\r[demo] consents recorded for {n}/{len(homes)} programme households")
    if homes:
        sys.stderr.write("\n")
    day = (datetime.now(CST) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = datetime.fromisoformat(max(granted).replace("Z", "+00:00"))  # a re-run: the same consents
    plan = after_consent(day_of_records(people, args.records, day), day, start)
    print(f"[demo] streaming {args.records} signed records of {day:%Y-%m-%d} (Asia/Shanghai) through the SDK")
    grand, started = SendTotals(), time.monotonic()
    for partner_id, records in plan.items():
        print(f"[demo] {partner_id}: {len(records)} records")
        totals = clients[partner_id].send_records(
            records, batch_size=args.batch_size, progress=progress_line(len(records))
        )
        sys.stderr.write("\n")
        for name in ("accepted", "duplicate", "rejected", "unavailable"):
            setattr(grand, name, getattr(grand, name) + getattr(totals, name))
        for code, n in totals.codes.items():
            grand.codes[code] = grand.codes.get(code, 0) + n
    elapsed = time.monotonic() - started
    print(
        f"[demo] done in {elapsed:.1f} s ({grand.total / max(elapsed, 1e-6):.0f} records/s): "
        f"accepted {grand.accepted}, duplicate {grand.duplicate}, rejected {grand.rejected}"
        + (f" {grand.codes}" if grand.codes else "")
        + f", unavailable {grand.unavailable}"
    )
    unavailable = grand.unavailable
    if homes:
        # a moment after the last household consent (a re-run finds the same ones: the same records)
        at = datetime.fromisoformat(max(home_granted).replace("Z", "+00:00")) + timedelta(seconds=30)
        readings = household_readings(homes, at)
        homes_totals = clients[HOUSEHOLD_PARTNER].send_records(readings, batch_size=args.batch_size)
        print(
            f"[demo] {HOUSEHOLD_PARTNER}: {len(readings)} household meter readings of the energy-saving "
            f"programme (30 days each, against the household's baseline): accepted {homes_totals.accepted}, "
            f"duplicate {homes_totals.duplicate}, rejected {homes_totals.rejected}"
            + (f" {homes_totals.codes}" if homes_totals.codes else "")
        )
        unavailable += homes_totals.unavailable
    return 0 if unavailable == 0 else 1


def _fixed_expiry() -> str:
    """Consents run to the end of next year: fixed within a year, so re-runs send identical bodies."""
    return f"{utc_now().year + 1}-12-31T23:59:59Z"


if __name__ == "__main__":
    sys.exit(main())
