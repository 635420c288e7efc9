"""Facts about accounts that other services rely on (the account service owns accounts; these
names are part of its contract)."""

# owner_pid of the bank's pool account: a redemption moves the customer's grams to it, and the
# exchange bridge batches what it receives.
POOL_OWNER = "bank-pool"

# Every chain of the bank pool, read from this one place (ADR 0005 §3): settled redemptions are
# spread over POOL_SHARDS chains by their entry id, so no single chain is a hot spot. The first
# chain keeps the pool's original owner, so a pool written before the split stays shard 0. The
# exchange bridge keeps one watermark per chain. A change of POOL_SHARDS is a contract change.
POOL_SHARDS = 4
POOL_OWNERS = (POOL_OWNER, *(f"{POOL_OWNER}/{n}" for n in range(1, POOL_SHARDS)))


def pool_owner_for(entry_id: str) -> str:
    """The pool chain a settled redemption's grams go to (entry ids are hex SM3 digests)."""
    return POOL_OWNERS[int(entry_id[:8], 16) % POOL_SHARDS]
