"""Which malloc the server runs on, and how to give it another.

Under mixed traffic (requests of every size, freed in other threads than the ones
that allocated them) glibc's malloc keeps freed memory in per-thread arenas instead
of returning it: a 90 s soak of `soundstorm serve` grew 96 MiB past its warm-up with
glibc and 93 MiB with MALLOC_ARENA_MAX=2, and returned 113 MiB with jemalloc
(docs/serving.md, "Memory"). TF Serving's maintainers give the same advice for
tensorflow_model_server (tensorflow/serving#2142, #1664: jemalloc or tcmalloc through
LD_PRELOAD). An allocator must be chosen before the process starts, so this module
only reports the one in use and builds the environment for a child that should use
another; `tools/setup.sh` installs jemalloc (Debian's libjemalloc2).
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

# The shared objects LD_PRELOAD names (searched like any library: no path needed).
LIBRARIES = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4"}
RECOMMENDED = "jemalloc"


def allocator_in_use(maps: Path = Path("/proc/self/maps")) -> str:
    """"jemalloc", "tcmalloc" or "glibc": the malloc mapped into this process (Linux)."""
    try:
        text = maps.read_text()
    except OSError:
        return "unknown"
    for name in LIBRARIES:
        if f"lib{name}" in text:
            return name
    return "glibc"


def is_installed(name: str) -> bool:
    """Whether the dynamic linker can find `name`'s library (ldconfig's cache)."""
    return ctypes.util.find_library(name) is not None


def preload_environment(name: str, environment: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `environment` (default: os.environ) whose LD_PRELOAD loads `name` first.

    Raises ValueError for a name not in LIBRARIES, FileNotFoundError when it is not
    installed (the message names the Debian package).
    """
    if name not in LIBRARIES:
        raise ValueError(f"unknown allocator {name!r}; choose one of {sorted(LIBRARIES)}")
    if not is_installed(name):
        package = {"jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4"}[name]
        raise FileNotFoundError(f"{name} is not installed: apt-get install {package}")
    environment = dict(os.environ if environment is None else environment)
    preloaded = environment.get("LD_PRELOAD", "")
    environment["LD_PRELOAD"] = " ".join(filter(None, [LIBRARIES[name], preloaded]))
    return environment


def startup_note() -> str:
    """The line `soundstorm serve` logs at start: the allocator, and what to do on glibc."""
    name = allocator_in_use()
    if name != "glibc":
        return f"malloc: {name}"
    hint = (f"LD_PRELOAD={LIBRARIES[RECOMMENDED]} soundstorm serve ..." if
            is_installed(RECOMMENDED) else "apt-get install libjemalloc2, then LD_PRELOAD="
            f"{LIBRARIES[RECOMMENDED]} soundstorm serve ...")
    return ("malloc: glibc, which keeps memory freed under mixed traffic; for a long-running "
            f"server: {hint} (docs/serving.md, Memory)")
