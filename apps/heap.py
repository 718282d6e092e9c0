"""glibc heap settings for processes that run JAX on the CPU: freed memory kept for reuse.

XLA's CPU runtime allocates the output of a large operation each time the operation
runs, loop iterations included, and frees it afterwards. glibc serves a block above its
mmap threshold (128 KiB at start, rising with the blocks freed to at most 32 MiB;
mallopt(3)) with a mapping of its own and unmaps it when freed, so the next pass of a
decode touches fresh pages: a minor page fault and the kernel's zeroing for each 4 KiB.
A 30 s decode of the reference model (1,500 frames, [4, 1500, 1500] float32 attention
scores a layer) faulted in 3.2 GiB per decode, about 30% of its time on a 2-core EPYC
(docs/benchmarks.md, `soundstorm bench --sections heap`). Serving every block from the
heap (M_MMAP_MAX 0) and keeping freed memory there (M_TRIM_THRESHOLD at its largest) lets
each pass reuse the last pass's pages; the process keeps its peak footprint in exchange.

TensorFlow's CPU allocator already reuses its memory (a SavedModel decode faults in almost
nothing), so the runtime, the model server and TF Serving deployments need none of this.
The `soundstorm` command applies it at start; code calling `decode` from its own process
can call `retain_freed_memory()` or start with the equivalent environment:
GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# <malloc.h> parameter numbers.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
RETAINED = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1}  # mallopt takes an int
_retained = False  # mallopt has no getter: what this module last set


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (mallopt's parameters are glibc's), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def malloc_tuned_by_environment(environ=os.environ) -> bool:
    """Whether the process was started with its own glibc malloc settings (GLIBC_TUNABLES'
    glibc.malloc.* or the older MALLOC_*_ variables) or another allocator preloaded: those
    are the operator's choice, left as they are."""
    return ("glibc.malloc." in environ.get("GLIBC_TUNABLES", "")
            or any(name.startswith("MALLOC_") and name.endswith("_") for name in environ)
            or any(allocator in environ.get("LD_PRELOAD", "")
                   for allocator in ("jemalloc", "tcmalloc", "mimalloc")))


def retain_freed_memory(environ=os.environ) -> bool:
    """Serves every allocation from the heap and keeps freed memory there (module docstring).

    Process-wide and for later allocations only. Returns True when applied; False on a C
    library other than glibc, or when the environment already chose malloc's settings.
    """
    global _retained
    libc = _glibc()
    if libc is None or malloc_tuned_by_environment(environ):
        return False
    if not all(libc.mallopt(parameter, value) == 1 for parameter, value in RETAINED.items()):
        return False
    _retained = True
    return True


def freed_memory_retained() -> bool:
    """Whether retain_freed_memory() is in effect in this process."""
    return _retained
