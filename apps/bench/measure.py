"""Timing, machine description, FLOP counts and the matmul peak the FLOP rates are read against."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from soundstorm.config import SoundStormConfig
from soundstorm.decoding import DecodingConfig
from soundstorm.model import SoundStorm, frame_mask_from_lengths

# Square float32 matmul sizes for the peak: the best of them is the attainable rate of
# the BLAS/XLA kernel here (small sizes underfill the cores, large ones spill caches).
PEAK_MATMUL_SIZES = (1024, 2048, 3072)


def median_seconds(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> float:
    """Median wall time of `repeats` calls of fn, after one untimed call (compilation)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> str:
    """CPU model, core count and library versions: every figure is of one machine."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    devices = ", ".join(sorted({device.device_kind for device in jax.devices()}))
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
            f"JAX {jax.__version__} on {devices}")


def matmul_peak_flops(repeats: int = 5, sizes=PEAK_MATMUL_SIZES) -> tuple[float, int]:
    """Best measured float32 FLOP/s of a jitted square matmul over `sizes`, and its size."""
    best = (0.0, 0)
    matmul = jax.jit(jnp.matmul)
    for size in sizes:
        a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), jnp.float32)
        seconds = median_seconds(lambda: matmul(a, a).block_until_ready(), repeats)
        best = max(best, (2 * size ** 3 / seconds, size))
    return best


def _cost_flops(jitted, *args) -> float:
    """FLOPs of jitted(*args) by XLA's cost analysis of the module lowered for the CPU,
    wherever this runs: a count of the computation, not of one backend's kernels (a GPU's
    compiled module hides its matmuls in cuBLAS calls the analysis does not count: the first
    H200 run read 60 GFLOP for a 1.1 TFLOP forward pass; and JAX 0.11 gives no analysis of
    a GPU-lowered module). The unoptimised module's count, or, where JAX gives none, the
    compiled CPU module's; on this CPU the two agree to 0.1%."""
    specs = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), args)
    with jax.default_device(jax.devices("cpu")[0]):  # uncommitted specs: lowered for the CPU
        lowered = jitted.lower(*specs)
        cost = lowered.cost_analysis() or lowered.compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jaxlib returns one dict per device
        cost = cost[0]
    return float(cost["flops"])


def forward_flops(config: SoundStormConfig, params, frames: int, batch: int = 1) -> float:
    """FLOPs of one forward pass over `frames` frames, by XLA's cost analysis (matmuls,
    attention and elementwise work; see _cost_flops)."""
    semantic = jnp.zeros((batch, frames // config.frames_per_semantic_token), jnp.int32)
    acoustic = jnp.zeros((batch, frames, config.num_levels), jnp.int32)
    mask = frame_mask_from_lengths(jnp.full((batch,), frames), frames)
    levels = jnp.zeros((batch,), jnp.int32)
    return _cost_flops(jax.jit(SoundStorm(config).apply), {"params": params}, semantic, acoustic,
                       mask, levels)


def decode_flops(config: SoundStormConfig, params, frames: int, decoding: DecodingConfig,
                 batch: int = 1) -> float:
    """FLOPs of one decode: a forward pass per iteration (sampling and ranking are
    elementwise and sort work, not counted)."""
    return decoding.num_passes * forward_flops(config, params, frames, batch)


def alternating_medians(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall times of several functions called in turn, `repeats` rounds: machine
    noise (another process, frequency changes) then falls on all of them alike."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, fn_times in zip(fns, times):
            started = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - started)
    return [statistics.median(fn_times) for fn_times in times]


def concurrent_throughput(send: Callable[[int], object], clients: int, per_client: int,
                          rounds: int) -> float:
    """Calls/s of `clients` threads each calling send(client index) `per_client` times
    back to back, over `rounds` timed rounds after one untimed round of one call each
    (which compiles whatever batch shapes this concurrency produces)."""
    import threading

    def run_round(count: int) -> float:
        threads = [threading.Thread(target=lambda i=i: [send(i) for _ in range(count)])
                   for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    run_round(1)
    seconds = sum(run_round(per_client) for _ in range(rounds))
    return clients * per_client * rounds / seconds
