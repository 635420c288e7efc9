"""Customer tiers from the net grams earned over the trailing 12 posting months (pure).

Thresholds are configurable (TIER_THRESHOLDS, e.g. "seedling:0,sprout:5000,tree:50000,
forest:500000"): a customer is in the highest tier whose threshold they reached.
"""

from bisect import bisect_right

DEFAULT_THRESHOLDS = "seedling:0,sprout:5000,tree:50000,forest:500000"


class Tiers:
    def __init__(self, spec: str = DEFAULT_THRESHOLDS):
        levels = []
        for part in spec.split(","):
            name, _, grams = part.strip().partition(":")
            if not name or not grams.strip().isdigit():
                raise ValueError(f"TIER_THRESHOLDS: expected name:grams, got {part!r}")
            levels.append((int(grams), name))
        levels.sort()
        if not levels or levels[0][0] != 0:
            raise ValueError("TIER_THRESHOLDS: the lowest tier must start at 0")
        if len({n for _, n in levels}) != len(levels) or len({g for g, _ in levels}) != len(levels):
            raise ValueError("TIER_THRESHOLDS: tier names and thresholds must be unique")
        self.levels = levels
        self._bounds = [g for g, _ in levels]

    def tier_for(self, trailing_grams: int) -> str:
        return self.levels[max(bisect_right(self._bounds, trailing_grams) - 1, 0)][1]
