"""apps/heap.py: freed memory kept in the heap, so a block allocated again faults in nothing."""

import subprocess
import sys
import textwrap

import pytest

from soundstorm.apps import heap

BLOCK = 64 * 2**20  # above glibc's largest mmap threshold (32 MiB): mapped afresh by default
PAGES = BLOCK // 4096

# Allocates, writes and frees a block three times; prints the page faults of the last two.
_ROUNDS = textwrap.dedent(f"""
    import ctypes, ctypes.util, resource, sys
    from soundstorm.apps.heap import retain_freed_memory
    if sys.argv[1] == "retain":
        assert retain_freed_memory(environ={{}})
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def round_trip():
        block = libc.malloc({BLOCK})
        ctypes.memset(block, 1, {BLOCK})
        libc.free(block)
    round_trip()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    round_trip(); round_trip()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults_of_two_rounds(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(heap._glibc() is None, reason="mallopt is glibc's")
def test_a_freed_block_is_reused_without_page_faults_once_memory_is_retained():
    # glibc's own settings: each round maps the block anew and touches every page.
    assert _faults_of_two_rounds("default") >= 2 * PAGES * 0.9
    assert _faults_of_two_rounds("retain") <= 2 * PAGES * 0.05


@pytest.mark.parametrize("environ, tuned", [
    ({}, False),
    ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}, False),
    ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F:glibc.malloc.mmap_max=0"}, True),
    ({"MALLOC_TRIM_THRESHOLD_": "1"}, True),
    ({"MALLOC_ARENA_MAX": "2"}, False),  # arenas, not what is mapped or kept
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, True),
    ({"LD_PRELOAD": "/usr/lib/libtcmalloc_minimal.so.4"}, True),
    ({"LD_PRELOAD": "/opt/profiler/libhook.so"}, False),
])
def test_the_operators_malloc_settings_are_left_as_they_are(environ, tuned):
    assert heap.malloc_tuned_by_environment(environ) is tuned
    if tuned:
        assert heap.retain_freed_memory(environ) is False


def test_the_command_retains_freed_memory_except_for_the_server(monkeypatch, tmp_path):
    from soundstorm.apps.cli import main as cli
    calls = []
    monkeypatch.setattr(cli, "retain_freed_memory", lambda: calls.append(True))
    missing = str(tmp_path / "missing")
    assert cli.main(["bench", "--model", missing]) != 0  # fails after the start
    assert calls == [True]
    monkeypatch.setattr(cli, "import_tensorflow_quietly", lambda: None)
    monkeypatch.setattr(cli.serving, "_serve", lambda args: 0)
    calls.clear()
    cli.main(["serve", "--model_base_path", missing])
    assert calls == []
