"""Exchange bridge: aggregates verified reductions into SM2-signed batches for the exchange."""
