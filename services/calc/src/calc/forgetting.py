"""Deletion requests in calc: after `personal_data_deleted`, nothing calc keeps links the
person's pseudonym (user_pid) to their outcomes.

- The request: a tombstone (`forgotten`, `_id` = user_pid), then every stored outcome and
  reversal naming the pseudonym is rewritten without it (CalcRepository.forget_person: a scan,
  once per request).
- Records of a forgotten person still on their way (ingest revoked every consent of the person
  first, so none can count) are not processed: a batch drops them before calculating
  (`drop_forgotten`, one `$in` by `_id` on the tombstones, mostly misses), and nothing is
  stored or published for them.
- A deletion request that lands while a batch is between that check and storing its outcomes:
  the batch reads the tombstones again after storing (`scrub_stored`) and rewrites the outcomes
  it stored for a now-forgotten person. The request wrote its tombstone before scanning, so
  either the batch sees the tombstone or the request's scan sees the batch's outcomes.
"""

from typing import Mapping

from calc.repository import CalcRepository
from calc.schemas import reduction_id


def _user_pid(delivery) -> str:
    data = delivery.data
    return str(data.get("user_pid") or "") if isinstance(data, Mapping) else ""


def drop_forgotten(deliveries, repo: CalcRepository) -> tuple[list, int]:
    """(the deliveries to process, how many were dropped as a forgotten person's)."""
    forgotten = repo.forgotten_among({_user_pid(d) for d in deliveries})
    if not forgotten:
        return list(deliveries), 0
    kept = [d for d in deliveries if _user_pid(d) not in forgotten]
    return kept, len(deliveries) - len(kept)


def scrub_stored(deliveries, repo: CalcRepository) -> int:
    """After a batch stored its outcomes: rewrite those of a person forgotten meanwhile."""
    forgotten = repo.forgotten_among({_user_pid(d) for d in deliveries})
    if not forgotten:
        return 0
    ids = [
        reduction_id(str(d.data["record_key"]), 0)
        for d in deliveries
        if _user_pid(d) in forgotten and d.data.get("record_key")
    ]
    return repo.scrub_outcomes_by_ids(ids)
