"""tools/mutation_tests.py picks, per mutant, the tests that execute the mutated function."""

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "mutation_tests.py"
_spec = importlib.util.spec_from_file_location("mutation_tests", TOOL)
mutation_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation_tests)

MODULE = textwrap.dedent("""\
    LIMIT = 3


    def double(x):
        return 2 * x


    def outer(x):
        def inner(y):
            return y + 1
        return inner(x) - 1


    def never_called(x):
        return x - LIMIT
    """)

TESTS = textwrap.dedent("""\
    import time

    from pkg.mod import double, outer


    def test_double():
        assert double(2) == 4


    def test_outer():
        time.sleep(0.5)  # the slow one: it must come last
        assert outer(5) == 5


    def test_nothing_of_mod():
        assert True
    """)


def test_the_innermost_function_body_holds_a_line():
    spans = mutation_tests.function_bodies(MODULE)
    assert spans == [(5, 5), (9, 11), (10, 10), (15, 15)]
    assert mutation_tests.innermost(spans, 10) == (10, 10)
    assert mutation_tests.innermost(spans, 11) == (9, 11)
    assert mutation_tests.innermost(spans, 8) is None  # a `def` line acts at import
    assert mutation_tests.innermost(spans, 1) is None


def test_changed_lines_are_numbered_in_the_original():
    assert mutation_tests.changed_lines(MODULE, MODULE.replace("2 * x", "3 * x")) == {5}
    assert mutation_tests.changed_lines(MODULE, MODULE.replace("LIMIT = 3\n", "")) == {1}
    assert mutation_tests.changed_lines(MODULE, MODULE) == set()


def _recorded(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(MODULE)
    (tmp_path / "test_mod.py").write_text(TESTS)
    subprocess.run([sys.executable, str(TOOL), "record", "--source", "pkg/mod.py", "--map",
                    "map.json", "--", "test_mod.py"], cwd=tmp_path, check=True,
                   capture_output=True)
    return json.loads((tmp_path / "map.json").read_text())


def test_each_mutant_runs_the_tests_that_execute_it(tmp_path):
    pytest.importorskip("pytest_cov", reason="the `mutation` extra is not installed")
    recorded = _recorded(tmp_path)
    # Fastest first, so `pytest -x` reaches a quick kill sooner: the sleeping test is last.
    assert sorted(recorded["tests"][:2]) == ["test_mod.py::test_double",
                                             "test_mod.py::test_nothing_of_mod"]
    assert recorded["tests"][2] == "test_mod.py::test_outer"
    assert recorded["seconds"]["test_mod.py::test_outer"] >= 0.5
    select = lambda old, new: mutation_tests.selection(recorded, MODULE.replace(old, new))
    assert select("2 * x", "3 * x") == ["test_mod.py::test_double"]
    assert select("y + 1", "y - 1") == ["test_mod.py::test_outer"]
    assert select("x - LIMIT", "x + LIMIT") == []       # no test executes it
    assert select("LIMIT = 3", "LIMIT = 4") is None     # module level: every test


def test_a_tests_seconds_add_its_setup_call_and_teardown():
    table = """
    ============================= slowest durations ==============================
    2.50s setup    tests/test_a.py::test_x[CANCELLED]
    1.25s call     tests/test_a.py::test_x[CANCELLED]
    0.25s teardown tests/test_a.py::test_x[CANCELLED]
    0.10s call     tests/test_a.py::test_y
    """
    assert mutation_tests.test_seconds(table) == {"tests/test_a.py::test_x[CANCELLED]": 4.0,
                                                  "tests/test_a.py::test_y": 0.1}


@pytest.mark.parametrize("old, new, killed", [("2 * x", "3 * x", True),
                                              ("x - LIMIT", "x + LIMIT", False)])
def test_run_fails_exactly_when_a_selected_test_fails(tmp_path, old, new, killed):
    pytest.importorskip("pytest_cov", reason="the `mutation` extra is not installed")
    _recorded(tmp_path)
    (tmp_path / "pkg" / "mod.py").write_text(MODULE.replace(old, new))
    result = subprocess.run([sys.executable, str(TOOL), "run", "--source", "pkg/mod.py",
                             "--map", "map.json"], cwd=tmp_path, capture_output=True, text=True)
    assert (result.returncode != 0) == killed, result.stdout


def test_a_mutant_that_never_ends_is_killed_with_its_tests(tmp_path):
    """Its tests are stopped at --timeout and the mutant counts as killed; no pytest is left
    running (cosmic-ray's own timeout kills only the tool's process)."""
    pytest.importorskip("pytest_cov", reason="the `mutation` extra is not installed")
    _recorded(tmp_path)
    (tmp_path / "pkg" / "mod.py").write_text(MODULE.replace("return 2 * x", "while True: pass"))
    result = subprocess.run([sys.executable, str(TOOL), "run", "--source", "pkg/mod.py",
                             "--map", "map.json", "--timeout", "5"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "the tests ran past 5 s: killed" in result.stdout
    left = subprocess.run(["pgrep", "-f", "test_mod.py::test_double"], capture_output=True)
    assert left.stdout == b""  # the looping pytest was killed, not orphaned


SCORE_TOOL = TOOL.parent / "mutation_score.py"
_score_spec = importlib.util.spec_from_file_location("mutation_score", SCORE_TOOL)
mutation_score = importlib.util.module_from_spec(_score_spec)
sys.modules["mutation_score"] = mutation_score  # dataclasses look their module up there
_score_spec.loader.exec_module(mutation_score)


def _one_line_diff(before: str, after: str) -> str:
    return (f"--- asoundstorm/masking.py\n+++ bsoundstorm/masking.py\n@@ -1,1 +1,1 @@\n"
            f"-    {before}\n+    {after}\n")


def test_retesting_forgets_the_unexplained_survivors_and_keeps_the_equivalent_ones(tmp_path):
    import sqlite3
    equivalent = _one_line_diff("unknown_semantic_prob: float = 0.0,",
                                "unknown_semantic_prob: float = -1.0,")
    unexplained = _one_line_diff("unknown_semantic_prob: float = 0.0,",
                                 "unknown_semantic_prob: float = 1.0,")
    session = tmp_path / "masking.sqlite"
    with sqlite3.connect(session) as db:
        db.execute("create table work_results (worker_outcome text, output text, "
                   "test_outcome text, diff text, job_id text primary key)")
        db.executemany("insert into work_results values ('normal', '', ?, ?, ?)", [
            ("survived", equivalent, "a"), ("survived", unexplained, "b"),
            ("killed", unexplained, "c")])
    source = "soundstorm/masking.py"
    assert mutation_score.equivalence(source, equivalent)
    assert mutation_score.equivalence(source, unexplained) is None
    assert mutation_score.equivalence("soundstorm/decoding.py", equivalent) is None

    assert mutation_score.forget_survivors(session, source) == 1
    with sqlite3.connect(session) as db:
        left = sorted(row[0] for row in db.execute("select job_id from work_results"))
    assert left == ["a", "c"]
    rows = mutation_score.results(session)
    assert mutation_score.counts(rows, 4, source) == {
        "mutants": 4, "run": 2, "killed": 1, "survived": 0, "equivalent": 1, "score": 1.0}


def _session(path, specs, results=()):
    """A cosmic-ray session database's three tables, as much of them as the tool reads."""
    import sqlite3
    with sqlite3.connect(path) as db:
        db.execute("create table work_items (job_id text primary key)")
        db.execute("create table mutation_specs (module_path text, operator_name text, "
                   "occurrence integer, start_pos_row integer, job_id text primary key)")
        db.execute("create table work_results (worker_outcome text, output text, "
                   "test_outcome text, diff text, job_id text primary key)")
        db.executemany("insert into work_items values (?)", [(job,) for job, *_ in specs])
        db.executemany("insert into mutation_specs values ('m.py', ?, ?, ?, ?)",
                       [(operator, occurrence, line, job) for job, operator, occurrence, line
                        in specs])
        db.executemany("insert into work_results values (?, '', ?, ?, ?)", results)


def test_recorded_outcomes_carry_a_run_over_to_a_new_session_of_the_same_source(tmp_path):
    import sqlite3
    # Job ids are random per session; operator and occurrence name the same mutant.
    first = [("a1", "core/NumberReplacer", 0, 3), ("a2", "core/NumberReplacer", 1, 3),
             ("a3", "core/AddNot", 0, 7), ("a4", "core/AddNot", 1, 9)]
    second = [("b" + job[1:], *rest) for job, *rest in first]
    old = tmp_path / "old.sqlite"
    _session(old, first, [("NORMAL", "KILLED", "diff 1", "a1"),
                          ("NORMAL", "SURVIVED", "diff 3", "a3"),
                          ("SKIPPED", None, None, "a4")])
    outcomes = tmp_path / "outcomes" / "m.json"
    assert mutation_score.save_outcomes(old, outcomes, "m.py", "digest") == 2  # not the skipped

    new = tmp_path / "new.sqlite"
    _session(new, second, [("SKIPPED", None, None, "b4")])
    assert mutation_score.restore_outcomes(new, outcomes, "digest") == 2
    with sqlite3.connect(new) as db:
        rows = sorted(db.execute("select job_id, worker_outcome, test_outcome, diff "
                                 "from work_results"))
    assert rows == [("b1", "NORMAL", "KILLED", "diff 1"), ("b3", "NORMAL", "SURVIVED", "diff 3"),
                    ("b4", "SKIPPED", None, None)]  # b2 is left to run
    # Entered once: a second restore finds them finished.
    assert mutation_score.restore_outcomes(new, outcomes, "digest") == 0

    changed = tmp_path / "changed.sqlite"
    _session(changed, second)
    assert mutation_score.restore_outcomes(changed, outcomes, "another digest") == 0
    assert mutation_score.restore_outcomes(changed, tmp_path / "missing.json", "digest") == 0
