"""Which credited reductions a redemption's grams came from (ADR 0005 §2).

Rule: a redemption consumes the account's credits oldest first, by entry seq. The account state
carries a cursor `fifo = [seq, used]`: the oldest entry not yet fully consumed and the grams
already used from it — a fixed-size pair, never a list. A redemption records the range it
consumed, `provenance = {from: [seq, used], to: [seq, used]}`; the credits with
`from.seq <= seq < to.seq` were *completed* by it (their last gram went into it), and each
completed reduction joins an exchange batch whole, once. Anyone can expand a range again by
re-reading the chain between the two seqs.

A credit's available grams are its grams less what its reversal took (a reversal can only
take grams not yet consumed: a consumed credit is locked, see `is_consumed`). A refund (the
compensating entry of a redemption that was not fulfilled) is consumed like a credit; the
reductions behind it are those its refunded redemption completed (`completed_between`).
"""

from dataclasses import dataclass

from account import ledger

CHUNK = 200  # seqs read per `_id` round trip while walking the chain
FIRST_CHUNK = 4  # a redemption's walk reads this many first (mostly the cursor's credit suffices), then doubles
START = (1, 0)  # seq 1 is the account's opening entry: the walk steps over it


class ProvenanceError(RuntimeError):
    """The chain has fewer available grams than the state's balance says (run the verifier)."""


def is_consumed(cursor, credit_seq: int) -> bool:
    """Whether a credit at credit_seq has given grams to a redemption (then it is locked)."""
    seq, used = cursor
    return credit_seq < seq or (credit_seq == seq and used > 0)


def available(entry: dict, reversal: dict | None) -> int:
    """Grams of a credit or refund entry that a redemption may consume (0 for any other)."""
    if entry["type"] == ledger.REFUND:
        return int(entry["grams"])
    if entry["type"] != ledger.CREDIT or int(entry["grams"]) <= 0:
        return 0
    taken = -int(reversal["grams"]) if reversal and int(reversal.get("grams", 0)) < 0 else 0
    return int(entry["grams"]) - taken


def corrected(grams: int, reversal: dict | None) -> tuple[int, int]:
    """(grams the exchange may receive, grams written off the pool) of a consumed credit that
    gave `grams`: a correction that lowered it after it was redeemed (its reversal refused
    `locked_redeemed`, with `corrected_grams`) caps it at min(grams, corrected); a correction
    that raised it changes nothing (ADR 0005 §2). A refusal without `corrected_grams` (written
    before it existed) keeps the grams."""
    if reversal is None or reversal.get("code") != "locked_redeemed" or "corrected_grams" not in reversal:
        return grams, 0
    kept = min(grams, max(0, int(reversal["corrected_grams"])))
    return kept, grams - kept


@dataclass(frozen=True)
class Lowered:
    """A redeemed reduction a correction lowered, as its pool transfer carries it."""

    reduction_id: str
    transfer: dict
    reversal: dict
    given: int
    kept: int
    written_off: int


def lowered(repo, items: list[dict]) -> list[Lowered]:
    """items: [{reduction_id, transfer_entry_id}] -> those a correction lowered after they were
    redeemed (in the given order). One `$in` of the credits, their reversals and the transfers;
    a reduction the transfer does not carry is refused (`invalid_reduction`)."""
    if len(items) > 500:
        raise ledger.InvalidRequest("at most 500 reductions per call", "invalid_page_size")
    pairs = [(str(i["reduction_id"]), str(i["transfer_entry_id"])) for i in items]
    found = repo.entries_by_ids(
        [ledger.credit_entry_id(r) for r, _ in pairs]
        + [ledger.reversal_entry_id(r) for r, _ in pairs]
        + [t for _, t in pairs]
    )
    out = []
    for rid, transfer_id in pairs:
        credit = found.get(ledger.credit_entry_id(rid))
        reversal = found.get(ledger.reversal_entry_id(rid))
        transfer = found.get(transfer_id)
        if (
            credit is None
            or transfer is None
            or transfer["type"] != ledger.REDEMPTION_TRANSFER
            or transfer.get("source_account_id") != credit.get("account_id")
        ):
            raise ledger.InvalidRequest(f"{rid} is not a reduction of pool transfer {transfer_id}", "invalid_reduction")
        given = available(credit, reversal)
        kept, off = corrected(given, reversal)
        if off > 0:
            out.append(Lowered(rid, transfer, reversal, given, kept, off))
    return out


@dataclass
class Walk:
    cursor: tuple[int, int]
    completed: list[dict]  # credit entries whose last gram this walk consumed, in seq order
    cursor_available: int = 0  # available grams of the credit at the new cursor (when known)


class ConsumedCredits:
    """(account, seq) -> available grams of a credit a sealed redemption consumed part of.

    Those grams never change again (a consumed credit is locked: its reversal takes nothing),
    so a process remembers the credit under its cursor and the next redemption of the account
    mostly walks without reading the chain. Only what a sealed redemption consumed is kept:
    a speculative walk that was never appended proves nothing about the credit."""

    def __init__(self, size: int = 100_000):
        self.size = size
        self._known: dict[tuple[str, int], int] = {}

    def get(self, account_id: str, seq: int) -> int | None:
        return self._known.get((account_id, seq))

    def remember(self, account_id: str, walked: "Walk") -> None:
        seq, used = walked.cursor
        if used > 0 and walked.cursor_available > 0:
            if len(self._known) >= self.size:
                self._known.clear()
            self._known[(account_id, seq)] = walked.cursor_available


class ChainReader:
    """Reads an account's entries by seq through `_id` lookups only (state `account:seq` names
    its entry), with each credit's reversal, CHUNK seqs per round trip."""

    def __init__(self, repo, account_id: str, head_seq: int):
        self.repo, self.account_id, self.head_seq = repo, account_id, head_seq

    def chunk(self, first: int, size: int = CHUNK) -> list[tuple[dict, int]]:
        """[(entry, available grams)] for seqs first.. (up to `size`, never past the head)."""
        seqs = range(first, min(first + size, self.head_seq + 1))
        states = self.repo.states_by_seq(self.account_id, seqs)
        entries = self.repo.entries_by_ids([states[s]["entry_id"] for s in seqs if s in states])
        ordered = []
        for s in seqs:
            if s not in states:
                raise ProvenanceError(f"{self.account_id}: no state at seq {s}")
            ordered.append(entries[states[s]["entry_id"]])
        credits = [e["reduction_id"] for e in ordered if e["type"] == ledger.CREDIT and e.get("reduction_id")]
        reversals = self.repo.entries_by_ids([ledger.reversal_entry_id(r) for r in credits]) if credits else {}
        return [(e, available(e, reversals.get(ledger.reversal_entry_id(e.get("reduction_id", ""))))) for e in ordered]


def walk(reader: ChainReader, cursor, grams: int, known: ConsumedCredits | None = None) -> Walk:
    """Consume `grams` from `cursor` forward -> the new cursor and the credits completed.
    `known`: consumed credits remembered in this process; when the cursor's credit is one of
    them and has more than `grams` left, nothing is read (the walk completes no credit)."""
    seq, used = cursor
    remembered = known.get(reader.account_id, seq) if known is not None and used > 0 else None
    if remembered is not None and remembered - used > grams:
        return Walk((seq, used + int(grams)), [], remembered)
    need, completed, size, avail = int(grams), [], FIRST_CHUNK, 0
    while need > 0:
        if seq > reader.head_seq:
            raise ProvenanceError(f"{reader.account_id}: credits end {need} g short")
        chunk, size = reader.chunk(seq, size), min(size * 2, CHUNK)
        for entry, avail in chunk:
            left = avail - used
            if left > 0:
                take = min(left, need)
                need, used = need - take, used + take
            if used >= avail:  # fully consumed (or nothing to consume): the cursor moves on
                if avail > 0:
                    completed.append(entry)
                seq, used, avail = seq + 1, 0, 0
            if need == 0:
                break
    return Walk((seq, used), completed, avail if used > 0 else 0)


def cursor_of(state: dict, reader: ChainReader) -> tuple[int, int]:
    """The state's cursor. States written before provenance existed have none: their redeemed
    total is walked once from the start (the same FIFO rule, so the result is the same)."""
    if "fifo" in state:
        return tuple(state["fifo"])
    if not state.get("redeemed"):
        return START
    return walk(reader, START, state["redeemed"]).cursor


def completed_between(reader: ChainReader, start, end) -> list[dict]:
    """Credit entries completed by the redemption whose provenance is start -> end, each with
    `available_grams` (what it gave): the available credits with start.seq <= seq < end.seq.
    A refund in the range stands for the credits its refunded redemption completed: those
    reductions reach the pool with the redemption that consumes the refund."""
    out, seq = [], start[0]
    while seq < end[0]:
        for entry, avail in reader.chunk(seq):
            if entry["seq"] >= end[0]:
                break
            if entry["type"] == ledger.REFUND:
                span = entry["refunded_provenance"]
                out.extend(completed_between(reader, span["from"], span["to"]))
            elif avail > 0:
                out.append({**entry, "available_grams": avail})
        seq += CHUNK
    return out
