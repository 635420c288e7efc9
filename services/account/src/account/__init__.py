"""Personal carbon account service: an append-only, SM3-chained ledger of integer grams."""
