"""Check `group_units`: per group (methodology, version, vintage) the registry's chain of issue
records and the bridge's own issued batches carry each remainder on, with contiguous serials and
whole tonnes of the grams."""

from exchange_bridge import batch_format as bf
from exchange_bridge.reconciliation.report import Report


class GroupChecks:
    """The group chains of a Reconciler (`self.participant`)."""

    def _groups(self, report: Report, bridge: dict, registry: dict) -> None:
        batches = bridge["batches"]
        ours_by_group: dict[str, list[str]] = {}
        for group in bridge["groups"]:
            ours_by_group[group] = [
                s["batch_id"] for s in bridge["slots"][group] if "issued" in batches[s["batch_id"]]["states"]
            ]
        keys = set(ours_by_group) | {
            g for g, rs in registry["by_group"].items() if any(r["to_holder"] == self.participant for r in rs)
        }
        summary = {}
        for group in sorted(keys):
            chain = sorted(registry["by_group"].get(group, []), key=lambda r: r["position"])
            self._registry_chain(report, group, chain)
            ours = [
                r for r in chain if r["to_holder"] == self.participant and r["batch_id"] not in registry["in_flight"]
            ]
            others = sorted({r["to_holder"] for r in chain} - {self.participant})
            if others:
                report.add("group_units", group, "the group's chain holds other participants' batches", others=others)
            issued = ours_by_group.get(group, [])
            grams = sum(batches[b]["doc"]["quantity_grams"] for b in issued)
            units, carried = bf.tonnes(0, grams)
            registry_units = sum(r["units"] for r in ours)
            registry_carry = ours[-1]["carried_out_grams"] if ours else 0
            if (registry_units, registry_carry) != (units, carried):
                report.add(
                    "group_units",
                    group,
                    "the bank's units in the group are not floor(grams of its issued batches / 1e6)",
                    grams=grams,
                    expected_units=units,
                    expected_carried=carried,
                    registry_units=registry_units,
                    registry_carried=registry_carry,
                )
            self._bridge_chain(report, group, issued, batches)
            summary[group] = {
                "batches": len(issued),
                "grams": grams,
                "units": registry_units,
                "carried": registry_carry,
            }
        report.figures["by_group"] = summary

    @staticmethod
    def _registry_chain(report: Report, group: str, chain: list[dict]) -> None:
        positions = [r["position"] for r in chain]
        if positions != list(range(1, len(chain) + 1)):
            report.add(
                "group_units", group, "the registry's issue records are not positions 1..n", positions=positions[:20]
            )
        previous, next_serial = None, 1
        for record in chain:
            carried_from, carried_in = (previous["batch_id"], previous["carried_out_grams"]) if previous else ("", 0)
            if (record["carried_from"], record["carried_in_grams"]) != (carried_from, carried_in):
                report.add(
                    "group_units",
                    record["batch_id"],
                    "does not carry the previous issue's remainder",
                    stated=[record["carried_from"], record["carried_in_grams"]],
                    expected=[carried_from, carried_in],
                )
            units, out = bf.tonnes(record["carried_in_grams"], record["quantity_grams"])
            if (record["units"], record["carried_out_grams"]) != (units, out):
                report.add(
                    "group_units", record["batch_id"], "units or remainder are not floor((carried in + grams) / 1e6)"
                )
            if record["units"]:
                if (record["start"], record["end"]) != (next_serial, next_serial + record["units"] - 1):
                    report.add(
                        "group_units",
                        record["batch_id"],
                        "serial block is not contiguous with the group's previous block (gap or overlap)",
                        block=[record["start"], record["end"]],
                        expected_start=next_serial,
                    )
                next_serial = (record["end"] or next_serial) + 1
            elif record["start"] is not None:
                report.add("group_units", record["batch_id"], "a batch of 0 units holds a serial block")
            previous = record

    @staticmethod
    def _bridge_chain(report: Report, group: str, issued: list[str], batches: dict) -> None:
        previous = None
        for batch_id in issued:
            doc = batches[batch_id]["doc"]
            carried_from, carried_in = (
                (previous, int(batches[previous]["states"]["issued"]["carried_out_grams"])) if previous else ("", 0)
            )
            if (doc["carried_from"], doc["carried_in_grams"]) != (carried_from, carried_in):
                report.add(
                    "group_units",
                    batch_id,
                    "the bridge's issued batch does not carry its predecessor's remainder",
                    stated=[doc["carried_from"], doc["carried_in_grams"]],
                    expected=[carried_from, carried_in],
                )
            previous = batch_id
