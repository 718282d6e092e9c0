"""Our JAX decode with glibc's own heap settings and with freed memory retained (apps/heap.py).

A process's heap cannot be put back as it was: once freed memory has been kept, the heap
stays grown and a baseline taken in the same process faults in less than a fresh one (a 30 s
decode of the reference model: 0.83 million page faults in a fresh process, 0.36-0.49
million in one whose settings mallopt had put back). So each setting gets a spawned process
of its own, which loads the model and compiles once; the parent asks the two for one timed
decode in turn, so that the machine's noise falls on both alike.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from pathlib import Path

import numpy as np


def _decode_on_request(connection, version_dir: str, request: dict, schedule: tuple[int, ...],
                       retain: bool) -> None:
    """The child: decodes `request` each time the parent sends "run", and answers
    (seconds, minor page faults, tokens); "stop" ends it."""
    from soundstorm.apps.heap import retain_freed_memory
    from soundstorm.apps.bench.suite import jax_decoder
    from soundstorm.export.reload import load_jax_model
    if retain and not retain_freed_memory():
        connection.send(RuntimeError("could not retain freed memory: the C library is not "
                                     "glibc, or the environment sets malloc's parameters"))
        return
    config, params = load_jax_model(Path(version_dir))
    run = jax_decoder(config, params, request, schedule)
    run()  # compiled before the timing
    connection.send("ready")
    while connection.recv() == "run":
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.perf_counter()
        tokens = run()
        seconds = time.perf_counter() - started
        connection.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
                         tokens))


class _DecodeProcess:
    def __init__(self, version_dir: Path, request: dict, schedule: tuple[int, ...], retain: bool):
        context = multiprocessing.get_context("spawn")  # a fresh heap, not a copy of ours
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_decode_on_request, daemon=True,
            args=(theirs, str(version_dir), request, tuple(schedule), retain))
        self._process.start()

    def ready(self) -> None:
        answer = self._connection.recv()
        if isinstance(answer, Exception):
            raise answer

    def decode(self) -> tuple[float, int, np.ndarray]:
        self._connection.send("run")
        return self._connection.recv()

    def close(self) -> None:
        try:
            self._connection.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()


def compare_heap_settings(version_dir: Path, request: dict, schedule: tuple[int, ...],
                          repeats: int) -> dict:
    """Times `decode` on `request` in two fresh processes, glibc's settings and freed memory
    retained, alternately `repeats` times each. Returns the median seconds and minor page
    faults of each ("default_s", "default_faults", "retained_s", "retained_faults") and
    whether every decode gave the same tokens ("tokens_equal")."""
    processes = [_DecodeProcess(version_dir, request, schedule, retain)
                 for retain in (False, True)]
    try:
        for process in processes:
            process.ready()
        runs: list[list[tuple[float, int, np.ndarray]]] = [[], []]
        for _ in range(repeats):
            for process, done in zip(processes, runs):
                done.append(process.decode())
    finally:
        for process in processes:
            process.close()
    first = runs[0][0][2]
    figures = {"tokens_equal": all(np.array_equal(tokens, first)
                                   for done in runs for _, _, tokens in done)}
    for name, done in zip(("default", "retained"), runs):
        figures[f"{name}_s"] = statistics.median(seconds for seconds, _, _ in done)
        figures[f"{name}_faults"] = statistics.median(faults for _, faults, _ in done)
    return figures
