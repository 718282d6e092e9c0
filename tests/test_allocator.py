"""runtime/serving/allocator.py: which malloc the server runs on, and a child's LD_PRELOAD."""

import subprocess
import sys

import pytest

from soundstorm.runtime.serving import allocator

PRINT_ALLOCATOR = ("from soundstorm.runtime.serving.allocator import allocator_in_use; "
                   "print(allocator_in_use())")


def _allocator_of_child(environment):
    return subprocess.run([sys.executable, "-c", PRINT_ALLOCATOR], env=environment,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_setup_installs_jemalloc_and_a_child_preloading_it_runs_on_it():
    assert allocator.is_installed("jemalloc"), "tools/setup.sh installs libjemalloc2"
    plain = {k: v for k, v in allocator.os.environ.items() if k != "LD_PRELOAD"}
    assert _allocator_of_child(plain) == "glibc"
    assert _allocator_of_child(allocator.preload_environment("jemalloc", plain)) == "jemalloc"


def test_the_preload_goes_first_and_keeps_what_was_there():
    environment = allocator.preload_environment("jemalloc", {"LD_PRELOAD": "libfoo.so", "A": "1"})
    assert environment == {"LD_PRELOAD": "libjemalloc.so.2 libfoo.so", "A": "1"}
    assert allocator.preload_environment("jemalloc", {})["LD_PRELOAD"] == "libjemalloc.so.2"


def test_unknown_and_missing_allocators_are_named(monkeypatch):
    with pytest.raises(ValueError, match="unknown allocator 'mimalloc'; choose one of "
                                         r"\['jemalloc', 'tcmalloc'\]"):
        allocator.preload_environment("mimalloc", {})
    monkeypatch.setattr(allocator, "is_installed", lambda name: False)
    with pytest.raises(FileNotFoundError, match="tcmalloc is not installed: apt-get install "
                                                "libtcmalloc-minimal4"):
        allocator.preload_environment("tcmalloc", {})


def test_the_mapped_library_names_the_allocator(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert allocator.allocator_in_use(maps) == "glibc"
    maps.write_text(maps.read_text() + "7f02-7f03 r-xp 0 08:01 2 "
                    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n")
    assert allocator.allocator_in_use(maps) == "tcmalloc"
    assert allocator.allocator_in_use(tmp_path / "absent") == "unknown"


def test_the_startup_line_on_glibc_says_what_to_preload(monkeypatch):
    monkeypatch.setattr(allocator, "allocator_in_use", lambda: "glibc")
    note = allocator.startup_note()
    assert note.startswith("malloc: glibc") and "LD_PRELOAD=libjemalloc.so.2 soundstorm serve" in note
    monkeypatch.setattr(allocator, "allocator_in_use", lambda: "jemalloc")
    assert allocator.startup_note() == "malloc: jemalloc"
