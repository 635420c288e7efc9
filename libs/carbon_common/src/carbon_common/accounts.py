"""Facts about accounts that other services rely on (the account service owns accounts; these
names are part of its contract)."""

# owner_pid of the bank's pool account: a redemption moves the customer's grams to it, and the
# exchange bridge batches what it receives.
POOL_OWNER = "bank-pool"

# Every chain of the bank pool, read from this one place: the exchange bridge keeps one
# watermark per chain. Today the pool is one chain; ADR 0005 §3 splits it into shards
# (`bank-pool/0` … `/N-1`), which are then listed here.
POOL_OWNERS = (POOL_OWNER,)
