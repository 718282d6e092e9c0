"""Server-side batching as TF Serving does it, configured by its batching parameters file.

Requests for one (model, version, signature) queue up; a batch closes when it
holds `max_batch_size` examples or `batch_timeout_micros` after its first
request. With `pad_variable_length_inputs`, inputs whose non-batch dimensions
differ are padded to the largest, with each tensor's first element (TF
Serving's rule); the batch is then padded up to the next `allowed_batch_sizes`
entry by repeating its first example. Each request gets its own rows of the
outputs back. The SavedModel's per-example lengths decide what is valid, so
neither kind of padding changes an example's tokens.

The queue is bounded as TF Serving bounds it: a batch counts as enqueued until a
batch thread takes it (session_bundle_config.proto, max_enqueued_batches: "A
batch that has been scheduled on a thread is considered to have been removed
from the queue"), so while every thread is busy, requests wait in at most
`max_enqueued_batches` x `max_batch_size` examples, and one more is UNAVAILABLE
with SharedBatchScheduler's words ("The batch scheduling queue to which this
task was submitted is full").
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
from google.protobuf import text_format

from soundstorm.protos import tf_serving_config_pb2
from soundstorm.protos.status import invalid_argument, unavailable


# TensorFlow's guess when a platform tells it nothing (kDefaultCores, tsl/platform/default/port.cc).
UNKNOWN_CPUS_GUESS = 4


def schedulable_cpus() -> int:
    """The CPUs this process may run on, as TensorFlow's port::NumSchedulableCPUs counts them:
    the affinity mask where the platform has one, else the machine's CPUs (macOS), else 4."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or UNKNOWN_CPUS_GUESS


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    # TF Serving's defaults where its batching parameters leave a field unset: it copies only
    # the fields that are set (bundle_factory_util.cc) onto SharedBatchScheduler's Options
    # (num_batch_threads = port::MaxParallelism(), the schedulable CPUs) and QueueOptions
    # (batch size 1000, timeout 0, 10 enqueued batches; shared_batch_scheduler.h).
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=schedulable_cpus)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise invalid_argument(f"allowed_batch_sizes must increase and end at "
                                   f"max_batch_size ({self.max_batch_size}), got {list(sizes)}")

    @classmethod
    def from_file(cls, path: Path) -> "BatchingOptions":
        """Reads a TF Serving batching parameters file (text proto).

        Raises StatusError (INVALID_ARGUMENT) for a file that does not parse or whose
        values cannot work; OSError for one that cannot be read.
        """
        try:
            params = text_format.Parse(Path(path).read_text(),
                                       tf_serving_config_pb2.BatchingParameters())
        except text_format.ParseError as error:
            raise invalid_argument(f"{path}: not a BatchingParameters text proto: {error}") \
                from None
        values = {}
        for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                     "num_batch_threads"):
            if params.HasField(name):
                values[name] = getattr(params, name).value
        return cls(allowed_batch_sizes=tuple(params.allowed_batch_sizes),
                   pad_variable_length_inputs=params.pad_variable_length_inputs, **values)

    def padded_batch_size(self, size: int) -> int:
        return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)


@dataclasses.dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    size: int
    future: concurrent.futures.Future
    arrived: float


def _pad_to(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape[1:] == shape:
        return array
    widths = [(0, 0)] + [(0, want - have) for have, want in zip(array.shape[1:], shape)]
    return np.pad(array, widths, constant_values=array.flat[0] if array.size else 0)


class Batcher:
    """Merges concurrent requests to one signature of one servable."""

    def __init__(self, run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                 options: BatchingOptions, on_batch: Callable[[int, int], None] | None = None):
        self._run, self.options = run, options
        self._on_batch = on_batch or (lambda examples, padded: None)
        self._queue: queue.Queue[_Task] = queue.Queue()
        # Examples accepted and not yet on a batch thread, and the most there may be.
        self._enqueued, self._capacity = 0, options.max_enqueued_batches * options.max_batch_size
        self._free_threads = threading.Semaphore(options.num_batch_threads)
        self._workers = concurrent.futures.ThreadPoolExecutor(options.num_batch_threads,
                                                              thread_name_prefix="batch")
        self._closed = threading.Event()
        self._closing = threading.Lock()  # no request is queued once close() has begun
        self._scheduler = threading.Thread(target=self._schedule, daemon=True,
                                           name="batch-scheduler")
        self._scheduler.start()

    def submit(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs `inputs` (batch-first arrays) in a batch and returns this request's rows of
        the outputs. Raises StatusError INVALID_ARGUMENT with BatchingSession::ComputeInputSize's
        words (batching_session.cc) for no inputs, a scalar, or unequal batch sizes; and for a
        request over max_batch_size; UNAVAILABLE when the batch queue is full."""
        if not inputs:
            raise invalid_argument("Batching session Run() must have at least one input tensor")
        if any(array.ndim == 0 for array in inputs.values()):
            raise invalid_argument("Batching session Run() input tensors must have at least "
                                   "one dimension")
        if len({array.shape[0] for array in inputs.values()}) != 1:
            raise invalid_argument("Batching session Run() input tensors must have equal "
                                   "0th-dimension size")
        size = next(iter(inputs.values())).shape[0]
        if size > self.options.max_batch_size:
            raise invalid_argument(f"Task size {size} is larger than maximum input batch size "
                                   f"{self.options.max_batch_size}")
        task = _Task(inputs, size, concurrent.futures.Future(), time.monotonic())
        with self._closing:
            closed = self._closed.is_set()
            if not closed:
                if self._enqueued + size > self._capacity:
                    raise unavailable("The batch scheduling queue to which this task was "
                                      "submitted is full")
                self._enqueued += size
                self._queue.put_nowait(task)
        if closed:  # its version was unloaded after the request got it: run it alone, here
            self._execute([task])
        return task.future.result()

    def _schedule(self) -> None:
        timeout = self.options.batch_timeout_micros / 1e6
        pending: _Task | None = None
        while True:
            first = pending or self._next(0.1)
            pending = None
            if first is None:
                # Closed (so nothing more is queued) and nothing left: every request is answered.
                if self._closed.is_set() and self._queue.empty():
                    return
                continue
            batch, size = [first], first.size
            deadline = first.arrived + timeout
            while size < self.options.max_batch_size:
                # Waits in short steps so that closing runs a waiting batch at once.
                remaining = 0.0 if self._closed.is_set() else deadline - time.monotonic()
                task = self._next(min(remaining, 0.05))
                if task is None:
                    if remaining > 0.05:
                        continue
                    break
                if size + task.size > self.options.max_batch_size or not self._mergeable(
                        first, task):
                    pending = task  # opens the next batch
                    break
                batch.append(task)
                size += task.size
            # Waits for a free batch thread; until one takes it, the batch stays enqueued.
            self._free_threads.acquire()
            with self._closing:
                self._enqueued -= size
            self._workers.submit(self._execute_on_thread, batch)

    @property
    def enqueued_examples(self) -> int:
        """Examples accepted and not yet taken by a batch thread (at most
        max_enqueued_batches x max_batch_size)."""
        return self._enqueued

    def _execute_on_thread(self, batch: list[_Task]) -> None:
        try:
            self._execute(batch)
        finally:
            self._free_threads.release()

    def _next(self, timeout: float) -> _Task | None:
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _mergeable(self, first: _Task, task: _Task) -> bool:
        if set(first.inputs) != set(task.inputs):
            return False
        return all(first.inputs[key].dtype == task.inputs[key].dtype and
                   first.inputs[key].ndim == task.inputs[key].ndim and
                   (self.options.pad_variable_length_inputs or
                    first.inputs[key].shape[1:] == task.inputs[key].shape[1:])
                   for key in first.inputs)

    def _execute(self, batch: list[_Task]) -> None:
        try:
            self._execute_merged(batch)
        except Exception as error:
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            # One bad request (the SavedModel's checks reject the whole batch) must not fail
            # its batch-mates: run each alone, so only the bad one gets the error.
            for task in batch:
                if not task.future.done():
                    self._execute([task])

    def _execute_merged(self, batch: list[_Task]) -> None:
        merged = {}
        for key in batch[0].inputs:
            arrays = [task.inputs[key] for task in batch]
            shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim > 1 \
                else ()
            merged[key] = np.concatenate([_pad_to(a, shape) for a in arrays])
        examples = merged[next(iter(merged))].shape[0]
        padded = self.options.padded_batch_size(examples)
        if padded > examples:
            merged = {key: np.concatenate([array, np.repeat(array[:1], padded - examples, 0)])
                      for key, array in merged.items()}
        self._on_batch(examples, padded)
        outputs = self._run(merged)
        offset = 0
        for task in batch:
            task.future.set_result({key: value[offset:offset + task.size]
                                    for key, value in outputs.items()})
            offset += task.size

    def close(self) -> None:
        """Stops queueing requests; every request already queued is still batched (without
        waiting out the batch timeout) and answered before this returns. A request submitted
        later runs alone in its caller's thread."""
        with self._closing:
            self._closed.set()
        self._scheduler.join()
        self._workers.shutdown(wait=True)
