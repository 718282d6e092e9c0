"""Prometheus metrics of one server, under TF Serving's names, so its dashboards carry over.

TF Serving records `/tensorflow/serving/request_count` {model_name, status} and
`/tensorflow/serving/request_latency` {model_name, API, entrypoint} (a histogram
in microseconds) per request (servables/tensorflow/util.cc, RecordRequestLatency,
RecordRequestCount), and its Prometheus exporter turns every character outside
[a-zA-Z0-9_] into ':' (util/prometheus_exporter.cc), so the names are
`:tensorflow:serving:request_count` and so on, without a `_total` suffix. The
batching and availability figures TF Serving does not have keep names of our own
under `:soundstorm:serving:`.
"""

from __future__ import annotations

import bisect
import threading


# Microseconds; generation takes seconds to minutes, so the buckets reach 10 minutes.
LATENCY_BUCKETS_US = tuple(int(s * 1e6) for s in (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                    20, 30, 60, 120, 300, 600))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
BATCH_EXAMPLES = ":soundstorm:serving:batch_examples"
BATCH_PADDING = ":soundstorm:serving:batch_padding_examples"
VERSIONS_AVAILABLE = ":soundstorm:serving:versions_available"


class _Histogram:
    def __init__(self, bounds):
        self.bounds, self.counts, self.sum = bounds, [0] * (len(bounds) + 1), 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def samples(self, name: str, labels: dict) -> list[tuple]:
        rows, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            total += count
            le = "+Inf" if bound == float("inf") else str(bound)
            rows.append((f"{name}_bucket", {**labels, "le": le}, total))
        return rows + [(f"{name}_sum", labels, self.sum), (f"{name}_count", labels, total)]


class ServerMetrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._requests: dict[tuple, int] = {}
        self._latency: dict[tuple, _Histogram] = {}
        self._batch_examples = _Histogram(BATCH_BUCKETS)
        self._batch_padding = 0
        self._versions: dict[str, int] = {}

    def observe(self, model: str, version: str, api: str, code: str, seconds: float,
                entrypoint: str = "GRPC") -> None:
        """One request: counted by model and status; if it succeeded, its latency by model, API
        and entrypoint (RecordRequestLatency is called on OK only)."""
        with self._lock:
            key = (model, code)
            self._requests[key] = self._requests.get(key, 0) + 1
            if code != "OK":  # latency of successful requests only, as TF Serving records it
                return
            latency_key = (model, api, entrypoint)
            if latency_key not in self._latency:
                self._latency[latency_key] = _Histogram(LATENCY_BUCKETS_US)
            self._latency[latency_key].observe(seconds * 1e6)

    def observe_batch(self, examples: int, padded: int) -> None:
        with self._lock:
            self._batch_examples.observe(examples)
            self._batch_padding += padded - examples

    def set_versions_available(self, model: str, count: int) -> None:
        with self._lock:
            self._versions[model] = count

    def exposition(self) -> bytes:
        """Prometheus text format as TF Serving's exporter writes it: a `# TYPE` line per
        metric, no `_total` suffix on counters, cumulative histogram buckets."""
        with self._lock:
            lines = [f"# TYPE {REQUEST_COUNT} counter"]
            lines += [_sample(REQUEST_COUNT, {"model_name": model, "status": status}, value)
                      for (model, status), value in sorted(self._requests.items())]
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), histogram in sorted(self._latency.items()):
                lines += [_sample(*row) for row in histogram.samples(
                    REQUEST_LATENCY, {"model_name": model, "API": api,
                                      "entrypoint": entrypoint})]
            lines.append(f"# TYPE {BATCH_EXAMPLES} histogram")
            lines += [_sample(*row) for row in self._batch_examples.samples(BATCH_EXAMPLES, {})]
            lines += [f"# TYPE {BATCH_PADDING} counter",
                      _sample(BATCH_PADDING, {}, self._batch_padding),
                      f"# TYPE {VERSIONS_AVAILABLE} gauge"]
            lines += [_sample(VERSIONS_AVAILABLE, {"model_name": model}, value)
                      for model, value in sorted(self._versions.items())]
        return ("\n".join(lines) + "\n").encode()


def _sample(name: str, labels: dict, value: float) -> str:
    """One sample line; label values escaped as the exposition format asks (\\, \", newline)."""
    escape = lambda text: str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    inside = ",".join(f'{key}="{escape(labels[key])}"' for key in sorted(labels))
    number = str(value) if isinstance(value, int) else repr(float(value))
    return f"{name}{{{inside}}} {number}" if inside else f"{name} {number}"
