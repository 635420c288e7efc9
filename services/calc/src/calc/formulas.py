"""The formula kinds a methodology file can name. Values live in the files; the arithmetic here.

Every formula yields baseline emissions (BE) and project emissions (PE) in grams as Decimals;
the reduction is ER = BE − PE (rounded and floored by the domain). A formula may derive extra
quantities (e.g. saved_kwh) that eligibility rules can refer to.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Mapping

G_PER_KG = Decimal(1000)
Quantities = Mapping[str, Decimal]


@dataclass(frozen=True)
class Formula:
    kind: str
    # Activity fields the formula reads (must be fields of the scenario in the scenario contract).
    inputs: tuple[str, ...]
    parameters: tuple[str, ...]
    derived: tuple[str, ...]
    uses_grid: bool
    baseline: str  # human-readable, used by docs and the preview breakdown
    project: str
    derive: Callable[[Quantities], dict[str, Decimal]]
    # (quantities incl. derived, parameter values, grid kgCO2/kWh or None) -> (BE g, PE g)
    emissions: Callable[[Quantities, Quantities, Decimal | None], tuple[Decimal, Decimal]]


def _no_derived(_q: Quantities) -> dict[str, Decimal]:
    return {}


FORMULAS: dict[str, Formula] = {
    f.kind: f
    for f in (
        Formula(
            kind="per_distance",
            inputs=("distance_km",),
            parameters=("baseline_g_per_pkm", "project_g_per_pkm"),
            derived=(),
            uses_grid=False,
            baseline="distance_km × baseline_g_per_pkm",
            project="distance_km × project_g_per_pkm",
            derive=_no_derived,
            emissions=lambda q, p, _g: (
                q["distance_km"] * p["baseline_g_per_pkm"],
                q["distance_km"] * p["project_g_per_pkm"],
            ),
        ),
        Formula(
            kind="per_step",
            inputs=("steps",),
            parameters=("baseline_g_per_step", "project_g_per_step"),
            derived=(),
            uses_grid=False,
            baseline="steps × baseline_g_per_step",
            project="steps × project_g_per_step",
            derive=_no_derived,
            emissions=lambda q, p, _g: (q["steps"] * p["baseline_g_per_step"], q["steps"] * p["project_g_per_step"]),
        ),
        Formula(
            kind="per_event",
            inputs=(),
            parameters=("baseline_g_per_event", "project_g_per_event"),
            derived=(),
            uses_grid=False,
            baseline="baseline_g_per_event",
            project="project_g_per_event",
            derive=_no_derived,
            emissions=lambda _q, p, _g: (p["baseline_g_per_event"], p["project_g_per_event"]),
        ),
        Formula(
            kind="ev_charging",
            inputs=("kwh", "region"),
            parameters=("petrol_car_g_per_km", "ev_kwh_per_km"),
            derived=(),
            uses_grid=True,
            baseline="kwh ÷ ev_kwh_per_km × petrol_car_g_per_km",
            project="kwh × grid_kg_per_kwh × 1000",
            derive=_no_derived,
            emissions=lambda q, p, grid: (
                q["kwh"] / p["ev_kwh_per_km"] * p["petrol_car_g_per_km"],
                q["kwh"] * grid * G_PER_KG,
            ),
        ),
        Formula(
            kind="electricity_saving",
            inputs=("baseline_kwh", "kwh", "region", "period_days"),
            parameters=(),
            derived=("saved_kwh",),
            uses_grid=True,
            baseline="baseline_kwh × grid_kg_per_kwh × 1000",
            project="kwh × grid_kg_per_kwh × 1000",
            derive=lambda q: {"saved_kwh": q["baseline_kwh"] - q["kwh"]},
            emissions=lambda q, _p, grid: (q["baseline_kwh"] * grid * G_PER_KG, q["kwh"] * grid * G_PER_KG),
        ),
        Formula(
            kind="green_electricity",
            inputs=("kwh", "region"),
            parameters=("green_g_per_kwh",),
            derived=(),
            uses_grid=True,
            baseline="kwh × grid_kg_per_kwh × 1000",
            project="kwh × green_g_per_kwh",
            derive=_no_derived,
            emissions=lambda q, p, grid: (q["kwh"] * grid * G_PER_KG, q["kwh"] * p["green_g_per_kwh"]),
        ),
    )
}
