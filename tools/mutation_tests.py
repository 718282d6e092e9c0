"""The tests worth running against one mutant: those that execute the mutated function.

Mutation testing runs a module's tests once per mutant; most mutants change a
function that only a few tests reach. So, before the mutants run, `record` runs
the tests once under coverage.py with one context per test (pytest-cov's
`--cov-context=test`) and writes, for every function of the module, the tests
that executed a line of its body. Then cosmic-ray's test command is `run`, which
diffs the mutated module against the original, finds the innermost function
around each changed line, and starts pytest on the tests that executed it:

- a change inside a function no test executes survives without a run: no test
  can see it (coverage cannot be wrong about a line that never ran, because only
  one change is planted at a time and the code that decides whether that line
  runs is unchanged);
- a change outside every function body (imports, constants, signatures, default
  values, decorators, class bodies) runs all of the module's tests, because it
  acts when the module is imported;
- with `--then-all` the other tests follow the selected ones. Use it for code
  traced by JAX: `jax.jit` traces a function once per process, so coverage
  credits only the first test that traced it, while later tests reuse the trace.

Selection only drops tests that cannot fail, or orders them, so the score it
gives is the score of the whole suite, found sooner (`pytest -x` stops at the
first failure): the tests run fastest first, by the times `record` measured, so
a mutant that a quick unit test kills never waits for one that starts a server.

    python tools/mutation_tests.py record --source M --map MAP.json -- TESTS...
    python tools/mutation_tests.py run --source M --map MAP.json [--then-all]
"""

from __future__ import annotations

import argparse
import ast
import re
import difflib
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n0")
# A mutant can turn a loop or an allocation unbounded; this cap fails it (MemoryError
# counts as killed) before it takes the memory that other work on the machine needs.
MEMORY_LIMIT_BYTES = 8 * 2**30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def function_bodies(source: str) -> list[tuple[int, int]]:
    """(first, last) line of every function's body, innermost last for nested ones."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans.append((node.body[0].lineno, node.end_lineno))
    return sorted(spans, key=lambda span: (span[0], -span[1]))


def innermost(spans: list[tuple[int, int]], line: int) -> tuple[int, int] | None:
    """The narrowest body that holds `line`, or None at module level."""
    around = [span for span in spans if span[0] <= line <= span[1]]
    return min(around, key=lambda span: span[1] - span[0]) if around else None


def test_id(context: str) -> str:
    """pytest-cov's context `tests/test_x.py::test_y[1]|run` -> the node id."""
    return context.rsplit("|", 1)[0]


def record(source: Path, tests: list[str], out: Path) -> None:
    """Runs `tests` once under coverage and writes the map the `run` command reads."""
    with tempfile.TemporaryDirectory() as scratch:
        data_file, report = Path(scratch) / ".coverage", Path(scratch) / "coverage.json"
        env = {**os.environ, "COVERAGE_FILE": str(data_file)}
        listed = subprocess.run([*PYTEST, "--collect-only", *tests], capture_output=True,
                                text=True, env=env)
        every = [line.strip() for line in listed.stdout.splitlines() if "::" in line]
        ran = subprocess.run([*PYTEST, f"--cov={source.parent}", "--cov-context=test",
                              "--cov-report=", "--durations=0", "--durations-min=0",
                              f"--basetemp={scratch}/tmp", *tests],
                             env=env, capture_output=True, text=True)
        print(ran.stdout[-2000:], ran.stderr[-2000:], sep="\n", flush=True)
        if ran.returncode != 0:
            raise SystemExit(f"mutation_tests: the unmutated tests of {source} fail")
        seconds = test_seconds(ran.stdout)
        # coverage's JSON report, read as a command: the tool imports nothing third-party.
        subprocess.run([sys.executable, "-m", "coverage", "json", "--show-contexts",
                        f"--include={source}", "-o", str(report)], env=env, check=True,
                       capture_output=True)
        files = json.loads(report.read_text())["files"]
        by_line = next(({int(line): contexts for line, contexts in data["contexts"].items()}
                        for name, data in files.items()
                        if Path(name).resolve() == source.resolve()), {})
    text = source.read_text()
    functions = []
    for first, last in function_bodies(text):
        reached = {test_id(context) for line in range(first, last + 1)
                   for context in by_line.get(line, ()) if context}
        functions.append({"first": first, "last": last,
                          "tests": [test for test in every if test in reached]})
    every.sort(key=lambda test: seconds.get(test, float("inf")))  # stable: ties keep order
    for function in functions:
        function["tests"].sort(key=every.index)
    out.write_text(json.dumps({"source": str(source), "original": text, "tests": every,
                               "all_arguments": tests, "functions": functions,
                               "seconds": seconds}, indent=1))


_DURATION = re.compile(r"^([0-9.]+)s (?:setup|call|teardown) +(\S+)$")


def test_seconds(pytest_output: str) -> dict[str, float]:
    """Each test's setup + call + teardown seconds, from pytest's `--durations=0` table."""
    seconds: dict[str, float] = {}
    for line in pytest_output.splitlines():
        match = _DURATION.match(line.strip())
        if match:
            seconds[match[2]] = seconds.get(match[2], 0.0) + float(match[1])
    return seconds


def changed_lines(original: str, mutated: str) -> set[int]:
    """Line numbers (1-based, in `original`) that the mutant removed or replaced."""
    lines = set()
    matcher = difflib.SequenceMatcher(a=original.splitlines(), b=mutated.splitlines(),
                                      autojunk=False)
    for tag, first, last, _, _ in matcher.get_opcodes():
        if tag != "equal":
            lines.update(range(first + 1, max(last, first + 1) + 1))
    return lines


def selection(recorded: dict, mutated: str) -> list[str] | None:
    """The tests to run for this mutant ([] when none executes it), or None for all."""
    spans = [(f["first"], f["last"]) for f in recorded["functions"]]
    tests_of = {(f["first"], f["last"]): f["tests"] for f in recorded["functions"]}
    chosen: set[str] = set()
    for line in changed_lines(recorded["original"], mutated):
        span = innermost(spans, line)
        if span is None:
            return None
        chosen.update(tests_of[span])
    return [test for test in recorded["tests"] if test in chosen]


def run(source: Path, recorded: dict, then_all: bool, timeout_s: float | None = None) -> int:
    tests = selection(recorded, source.read_text())
    if tests is None:
        # Every test, fastest first (older maps without times: the original arguments).
        arguments = recorded["tests"] if "seconds" in recorded else recorded["all_arguments"]
    elif not tests:
        print("mutation_tests: no test executes the mutated function", flush=True)
        return 0
    else:
        rest = [test for test in recorded["tests"] if test not in tests] if then_all else []
        arguments = tests + rest
    # A private temporary root: pytest prunes all but the newest three of the shared
    # /tmp/pytest-of-<user>/pytest-N folders, so another pytest on the machine could delete
    # this run's fixtures mid-run and "kill" a mutant that no test caught.
    with tempfile.TemporaryDirectory(prefix="mutant-") as scratch:
        try:
            return subprocess.run([*PYTEST, "-x", f"--basetemp={scratch}/tmp", *arguments],
                                  preexec_fn=_cap_memory, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            # Killed here, before cosmic-ray's own timeout kills only this process and leaves
            # a mutant that loops (a polling thread that never sleeps) using a core for ever.
            print(f"mutation_tests: the tests ran past {timeout_s:g} s: killed", flush=True)
            return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("record", "run"))
    parser.add_argument("--source", type=Path, required=True, help="the mutated module")
    parser.add_argument("--map", type=Path, required=True, help="the coverage map (JSON)")
    parser.add_argument("--then-all", action="store_true",
                        help="run the other tests after the selected ones (JAX-traced code)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before the tests are killed and the mutant counts as "
                             "killed (set below cosmic-ray's timeout)")
    parser.add_argument("tests", nargs="*", help="pytest arguments selecting the tests")
    # Intermixed: the tests after `--` follow the options (plain parsing gives them to
    # the first positional group and then refuses them).
    args = parser.parse_intermixed_args(argv)
    if args.command == "record":
        record(args.source, args.tests, args.map)
        return 0
    return run(args.source, json.loads(args.map.read_text()), args.then_all, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
