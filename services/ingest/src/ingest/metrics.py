"""Prometheus metrics of the ingest process (multi-process aware under gunicorn)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from carbon_common.config import setting


class Metrics:
    def __init__(self):
        # Every app gets its own registry so tests can create many apps in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "ingest_request_seconds", "HTTP request latency", ["endpoint", "status"], registry=self.registry
        )
        self.records = Counter(
            "ingest_records_total",
            "Behaviour records by outcome and rejection code",
            ["outcome", "code"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "ingest_request_rejections_total", "Whole requests refused, by code", ["code"], registry=self.registry
        )
        self.backlog = Gauge(
            "ingest_pipeline_backlog_messages",
            "Messages waiting between ingest and the ledger (calc and account queues), as last read",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.verify_seconds = Histogram(
            "ingest_sm2_verify_seconds",
            "SM2 signature verification time",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
        )

    def exposition(self) -> bytes:
        if setting("PROMETHEUS_MULTIPROC_DIR", ""):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
