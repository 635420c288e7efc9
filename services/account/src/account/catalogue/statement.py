"""The catalogue lines of a monthly statement: one line per item redeemed or refunded."""

from account import ledger


def catalogue_lines(entries: list[dict], titles=lambda redemption_ids: {}) -> list[dict]:
    """From one month's entries of an account: per item, the redemptions (count, grams) and the
    refunds posted that month (a refund names its redemption's item). `titles(ids)` -> the
    item title each redemption entry id was made under (the newest of the month wins)."""
    lines: dict[str, dict] = {}
    sources = {}
    for e in entries:
        item_id = e.get("item_id")
        if not item_id or e["type"] not in (ledger.REDEMPTION, "refund"):
            continue
        line = lines.setdefault(
            item_id,
            {
                "item_id": item_id,
                "title": "",
                "redeemed_count": 0,
                "redeemed_grams": 0,
                "refunded_count": 0,
                "refunded_grams": 0,
            },
        )
        if e["type"] == ledger.REDEMPTION:
            line["redeemed_count"] += 1
            line["redeemed_grams"] += -e["grams"]
            sources[e["_id"]] = item_id
        else:
            line["refunded_count"] += 1
            line["refunded_grams"] += e["grams"]
            if e.get("refunded_entry_id"):
                sources.setdefault(e["refunded_entry_id"], item_id)
    if sources:
        for redemption_id, title in titles(list(sources)).items():
            if title and redemption_id in sources:
                lines[sources[redemption_id]]["title"] = title
    return [lines[k] for k in sorted(lines)]


def titles_from(repo):
    """titles(ids) for `catalogue_lines` over the ledger repository's database (none for a
    repository without one, such as the unit tests' fake)."""
    db = getattr(repo, "db", None)
    if db is None:
        return lambda redemption_ids: {}
    from account.catalogue.store import CatalogueStore

    store = CatalogueStore(db)

    def titles(redemption_ids):
        found = store.redemptions_by_ids(redemption_ids, {"title": 1})
        return {rid: doc.get("title", "") for rid, doc in found.items()}

    return titles
