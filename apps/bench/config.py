"""What `soundstorm bench` runs: its sections, lengths and repeats (apps/bench/suite.py)."""

from __future__ import annotations

import dataclasses

from soundstorm.validation import InputError

SECTIONS = ("end_to_end", "savedmodel_vs_jax", "compute_dtype", "heap", "autoregressive", "peer",
            "grpc", "batching")
# TF Serving-style batching for the throughput section (serving_configs/batching_parameters.txt
# in spirit: batch up to 16, short timeout, padded variable-length inputs).
BATCHING = dict(max_batch_size=16, batch_timeout_micros=20_000,
                allowed_batch_sizes=(1, 2, 4, 8, 16), pad_variable_length_inputs=True,
                num_batch_threads=1)
VOICE_TEXT = "Please bring eleven shells to the small basket before dinner."
VOICE_SPEAKER = "gb_female_1"


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    seconds: tuple[float, ...] = (5.0, 10.0, 30.0, 60.0)     # end to end
    compare_seconds: tuple[float, ...] = (5.0, 10.0, 30.0)   # SavedModel vs JAX, FLOP/s, bf16
    autoregressive_seconds: tuple[float, ...] = (5.0, 10.0)
    peer_seconds: tuple[float, ...] = (5.0, 10.0, 30.0)
    clients: tuple[int, ...] = (1, 4, 16)
    request_seconds: float = 5.0      # one gRPC / batching request
    prompt_seconds: float = 3.0       # of the direct model calls (within the totals above)
    repeats: int = 3
    sections: tuple[str, ...] = SECTIONS

    def __post_init__(self):
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise InputError(f"unknown bench sections {sorted(unknown)}; choose from {SECTIONS}")
        if self.repeats < 1 or any(c < 1 for c in self.clients):
            raise InputError("repeats and client counts must be >= 1")
        lengths = (*self.seconds, *self.compare_seconds, *self.autoregressive_seconds,
                   *self.peer_seconds, self.request_seconds)
        if any(s <= self.prompt_seconds for s in lengths if s is not None):
            raise InputError(f"every length must exceed the {self.prompt_seconds} s prompt")
