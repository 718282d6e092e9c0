"""Prometheus metrics of one server (its own registry, so servers in one process stay apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Generation takes seconds to minutes: buckets up to 10 minutes.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "soundstorm_serving_requests", "Requests by model, version, API and status code",
            ["model", "version", "api", "code"], registry=self.registry)
        self.latency = Histogram(
            "soundstorm_serving_request_latency_seconds", "Request latency",
            ["model", "version", "api"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_examples = Histogram(
            "soundstorm_serving_batch_examples", "Examples per executed batch (before padding)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.batch_padding = Counter(
            "soundstorm_serving_batch_padding_examples", "Examples added to reach an allowed "
            "batch size", registry=self.registry)
        self.versions_available = Gauge(
            "soundstorm_serving_versions_available", "Available versions per model", ["model"],
            registry=self.registry)

    def observe(self, model: str, version: str, api: str, code: str, seconds: float) -> None:
        self.requests.labels(model, version, api, code).inc()
        self.latency.labels(model, version, api).observe(seconds)

    def observe_batch(self, examples: int, padded: int) -> None:
        self.batch_examples.observe(examples)
        self.batch_padding.inc(padded - examples)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
