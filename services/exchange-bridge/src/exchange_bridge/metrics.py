"""The bridge's Prometheus metrics (module-level: registered once per process)."""

from prometheus_client import Counter

SUBMISSIONS = Counter(
    "carbon_exchange_submissions",
    "Batch submissions to the exchange, by outcome (registered / retry / rejected / error)",
    ["outcome"],
)
GRAMS_REGISTERED = Counter(
    "carbon_exchange_registered_grams", "Grams CO2e registered at the exchange (serial blocks issued)"
)
BATCHES_REGISTERED = Counter(
    "carbon_exchange_batches_registered", "Batches registered at the exchange and announced on the bus"
)
