"""Facts about accounts that other services rely on (the account service owns accounts; these
names are part of its contract)."""

# owner_pid of the bank's pool account: a redemption moves the customer's grams to it, and the
# exchange bridge batches what it receives.
POOL_OWNER = "bank-pool"
