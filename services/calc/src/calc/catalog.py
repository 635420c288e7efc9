"""Methodology and factor-set versions, and which one is in force at a given instant.

A version is *selectable* when its status is not `withdrawn` and no loaded `corrected` version
supersedes it. Exactly one selectable version may be in force per scenario (methodologies) or
per id (factor sets) at any instant; the loader enforces that.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping

from carbon_common.scenarios import FieldSpec

REGIONS = ("north", "northeast", "east", "central", "northwest", "south", "southwest", "national")


@dataclass(frozen=True)
class Window:
    effective_from: datetime
    effective_to: datetime | None  # exclusive; None = open-ended

    def contains(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)

    def overlaps(self, other: "Window") -> bool:
        a_end, b_end = self.effective_to, other.effective_to
        return (a_end is None or other.effective_from < a_end) and (b_end is None or self.effective_from < b_end)


@dataclass(frozen=True)
class Rule:
    min: Decimal | None
    plausible_max: Decimal | None


@dataclass(frozen=True)
class CapSpec:
    period: str
    scope: str
    max_grams: int = 0
    max_count: int = 0
    scope_key_field: str = ""


@dataclass(frozen=True)
class DedupSpec:
    fields: tuple[str, ...]
    time: str  # minute | day | month | none


@dataclass(frozen=True)
class Methodology:
    id: str
    version: str
    status: str
    supersedes: str | None
    scenario: str
    window: Window
    formula: str
    factor_set_id: str | None
    factor_basis: str | None
    activity: Mapping[str, FieldSpec]  # the scenario's fields in the scenario contract
    parameters: Mapping[str, Decimal]
    eligibility: Mapping[str, Rule]
    caps: tuple[CapSpec, ...]
    dedup: DedupSpec
    document: Mapping[str, Any] = field(compare=False, repr=False)  # the file as published
    path: str = field(default="", compare=False)


class GridFactorMissing(LookupError):
    pass


@dataclass(frozen=True)
class FactorSet:
    id: str
    version: str
    status: str
    supersedes: str | None
    window: Window
    # basis -> year -> region -> kgCO2/kWh
    factors: Mapping[str, Mapping[int, Mapping[str, Decimal]]]
    document: Mapping[str, Any] = field(compare=False, repr=False)
    path: str = field(default="", compare=False)

    def grid_factor(self, basis: str, region: str, year: int) -> tuple[int, Decimal]:
        """Factor for `region` in `year`, or in the latest earlier year that has one.

        Factors are published with a two-year lag, so behaviour in a year without its own
        factor uses the latest published one. Returns (year used, kgCO2/kWh).
        """
        by_year = self.factors.get(basis, {})
        for candidate in sorted((y for y in by_year if y <= year), reverse=True):
            if region in by_year[candidate]:
                return candidate, by_year[candidate][region]
        raise GridFactorMissing(
            f"factor set {self.id} v{self.version} has no {basis} factor for region {region!r} in {year} or earlier"
        )


def _selectable(versions: Iterable) -> list:
    versions = list(versions)
    superseded = {(v.id, v.supersedes) for v in versions if v.status == "corrected"}
    return [v for v in versions if v.status != "withdrawn" and (v.id, v.version) not in superseded]


class Catalog:
    def __init__(self, methodologies: Iterable[Methodology], factor_sets: Iterable[FactorSet]):
        self.methodologies = tuple(sorted(methodologies, key=lambda m: (m.id, m.window.effective_from, m.version)))
        self.factor_sets = tuple(sorted(factor_sets, key=lambda f: (f.id, f.window.effective_from, f.version)))
        self._selectable_m = _selectable(self.methodologies)
        self._selectable_f = _selectable(self.factor_sets)

    def methodology_for(self, scenario: str, at: datetime) -> Methodology | None:
        return next((m for m in self._selectable_m if m.scenario == scenario and m.window.contains(at)), None)

    def factor_set_for(self, factor_set_id: str, at: datetime) -> FactorSet | None:
        return next((f for f in self._selectable_f if f.id == factor_set_id and f.window.contains(at)), None)

    def methodology(self, methodology_id: str, version: str) -> Methodology | None:
        return next((m for m in self.methodologies if m.id == methodology_id and m.version == version), None)

    def factor_set(self, factor_set_id: str, version: str) -> FactorSet | None:
        return next((f for f in self.factor_sets if f.id == factor_set_id and f.version == version), None)

    def is_superseded(self, item: Methodology | FactorSet) -> bool:
        pool = self.methodologies if isinstance(item, Methodology) else self.factor_sets
        return any(v.id == item.id and v.status == "corrected" and v.supersedes == item.version for v in pool)

    def corrections(self) -> list[Methodology | FactorSet]:
        """Every `corrected` version, methodologies first: the input of recalculation."""
        return [v for v in (*self.methodologies, *self.factor_sets) if v.status == "corrected"]

    @property
    def scenarios(self) -> list[str]:
        return sorted({m.scenario for m in self.methodologies})
