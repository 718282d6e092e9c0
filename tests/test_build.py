"""Checks that the Bazel BUILD files describe the project as it is.

Pure Python and fast: no Bazel needed. The BUILD files are read with `ast`
(Starlark's BUILD dialect is a subset of Python's syntax), each call to a rule
is recorded as a Target, and the checking functions below compare the targets
with the files in git and with the imports of the sources:

  (a) every .py file of the project packages belongs to exactly one target's
      srcs, and every srcs/data file exists;
  (b) every .proto file belongs to a proto_library;
  (c) every internal label (//pkg:name, //pkg, :name) names an existing target
      (or, in data, a file);
  (d) every requirement("x") names a distribution of pyproject.toml's
      dependencies or `test` extra;
  (e) each target's deps cover the project modules its sources import (and
      the packages above them), and third-party imports come from a
      requirement() of the target;
  (f) the dependency graph has no cycle (Bazel rejects one);
  (g) every test file is one `pytest_test` (tests/pytest.bzl, run here as Python to
      see the py_test Bazel would get), so none is written out by hand;
  and each checking function catches a deliberately broken copy.

buildifier: no PyPI package ships it (`buildifier` and `bazel-buildifier`
do not exist on PyPI). The npm package @bazel/buildifier ships the binaries
and works offline (`npm install -g @bazel/buildifier@8.2.1`); the format
test below runs it where it is installed and is skipped, saying so, where not.
"""
from __future__ import annotations

import ast
import copy
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from soundstorm import folder_module

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
BUILD_FILE_NAMES = ("BUILD", "BUILD.bazel")
# The directories whose Python files must all be in a target.
PYTHON_DIRS = ("soundstorm", "export", "runtime", "protos", "apps", "tests", "benchmarks")
# Top-level names of the project's own packages.
PROJECT_PACKAGES = {"soundstorm", "export", "runtime", "protos", "apps"}

PY_RULES = {"py_library", "py_binary", "py_test"}
RULES = PY_RULES | {"proto_library", "py_proto_library", "filegroup", "compile_pip_requirements"}
# Rules that Bazel itself provides; every other rule must be load()ed.
NATIVE = {"package", "exports_files", "filegroup", "load"}

# Imported modules that come from a distribution that is not the project's
# direct dependency, with the requirement that brings it in.
TRANSITIVE = {"pyyaml": "kubernetes-validate"}
# Imported modules that no requirement() can declare: the bench's peer section installs
# soundstorm-pytorch by hand with --no-deps (its declared dependencies are the
# peer's whole training stack, which its SoundStorm class does not use).
HAND_INSTALLED = {"soundstorm_pytorch"}


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


# --- reading the BUILD files -------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    name: str


@dataclass
class Target:
    package: str  # "" for the top-level package
    kind: str
    name: str
    attrs: dict
    where: str  # file:line

    @property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"

    def strings(self, attr: str) -> list[str]:
        return [v for v in self.attrs.get(attr, []) if isinstance(v, str)]

    def requirements(self) -> list[str]:
        return [v.name for v in self.attrs.get("deps", []) if isinstance(v, Requirement)]

    def src_paths(self) -> list[str]:
        """Repository-relative paths of the files in srcs (labels to targets excluded)."""
        return [join(self.package, s) for s in self.strings("srcs") if not is_label(s)]


@dataclass
class Project:
    targets: dict[str, Target] = field(default_factory=dict)  # by label
    exported: set[str] = field(default_factory=set)  # repository-relative paths
    loaded: dict[str, set[str]] = field(default_factory=dict)  # BUILD path -> symbols
    used: dict[str, set[str]] = field(default_factory=dict)  # BUILD path -> rules called
    packages: set[str] = field(default_factory=set)


def join(package: str, name: str) -> str:
    return f"{package}/{name}" if package else name


def is_label(value: str) -> bool:
    return value.startswith((":", "//", "@"))


class BuildError(Exception):
    pass


def _evaluate(node: ast.AST, where: str):
    """The value of a BUILD expression: literals, lists, + and requirement()."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, bool)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(e, where) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_evaluate(k, where): _evaluate(v, where) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate(node.left, where) + _evaluate(node.right, where)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "requirement"
            and len(node.args) == 1 and not node.keywords):
        return Requirement(_evaluate(node.args[0], where))
    # glob() and friends land here on purpose: srcs are listed file by file.
    raise BuildError(f"{where}: unsupported expression {ast.unparse(node)!r}")


def load_macros(bzl: Path) -> dict:
    """The functions a project .bzl file defines, run as Python (Starlark's syntax is a subset):
    each call of a macro returns the (rule, attributes) it would declare, so the checks see
    exactly the targets Bazel would."""
    calls: list[tuple[str, dict]] = []
    stubs = {"requirement": Requirement,
             **{rule: (lambda rule: lambda **kwargs: calls.append((rule, kwargs)))(rule)
                for rule in RULES}}
    namespace: dict = {}

    def load(_label, *symbols, **aliases):
        namespace.update({symbol: stubs[symbol] for symbol in symbols})
        namespace.update({alias: stubs[symbol] for alias, symbol in aliases.items()})

    namespace["load"] = load
    exec(compile(bzl.read_text(), str(bzl), "exec"), namespace)

    def expand(function):
        def macro(**kwargs):
            calls.clear()
            function(**kwargs)
            return list(calls)
        return macro
    return {name: expand(value) for name, value in namespace.items()
            if callable(value) and getattr(value, "__module__", None) is None
            and name not in stubs and name != "load"}


def parse_build(text: str, package: str, path: str, project: Project,
                root: Path = ROOT) -> None:
    """Adds the targets of one BUILD file to project."""
    project.packages.add(package)
    loaded = project.loaded.setdefault(path, set())
    used = project.used.setdefault(path, set())
    macros: dict = {}
    for statement in ast.parse(text, filename=path).body:
        where = f"{path}:{statement.lineno}"
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
                and isinstance(statement.value.func, ast.Name)):
            raise BuildError(f"{where}: only calls are supported at the top level")
        call = statement.value
        function = call.func.id
        args = [_evaluate(a, where) for a in call.args]
        kwargs = {k.arg: _evaluate(k.value, where) for k in call.keywords}
        used.add(function)
        if function == "load":
            loaded.update(args[1:])
            loaded.update(kwargs)
            if args[0].startswith(":") and args[0].endswith(".bzl"):
                macros.update(load_macros(root / join(package, args[0][1:])))
        elif function == "package":
            pass
        elif function == "exports_files":
            project.exported.update(join(package, f) for f in args[0])
        elif function in RULES or function in macros:
            declared = macros[function](**kwargs) if function in macros else [(function, kwargs)]
            for rule, attrs in declared:
                if function in macros:
                    attrs = {**attrs, "generator_function": function}
                target = Target(package, rule, attrs["name"], attrs, where)
                if target.label in project.targets:
                    raise BuildError(f"{where}: {target.label} is defined twice")
                project.targets[target.label] = target
        else:
            raise BuildError(f"{where}: unknown function {function}()")


def build_files(root: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "bazel-")) and d not in {"__pycache__"}]
        found += [Path(directory) / f for f in files if f in BUILD_FILE_NAMES]
    return sorted(found)


def load_project(root: Path = ROOT) -> Project:
    project = Project()
    for path in build_files(root):
        package = path.parent.relative_to(root).as_posix()
        package = "" if package == "." else package
        parse_build(path.read_text(), package, path.relative_to(root).as_posix(), project, root)
    return project


def resolve(label: str, package: str) -> tuple[str, str] | None:
    """(package, name) of an internal label; None for an external one (@repo//...)."""
    if label.startswith("@"):
        return None
    if label.startswith(":"):
        return package, label[1:]
    if label.startswith("//"):
        pkg, _, name = label[2:].partition(":")
        return pkg, name or pkg.rsplit("/", 1)[-1]
    return package, label  # a bare name: a target or a file of this package


def git_files(root: Path, pattern: str) -> list[str]:
    """Files in git, and the new ones not ignored (work in progress counts too)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", pattern],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    return sorted({f for f in out.splitlines() if (root / f).exists()})


def project_python_files(root: Path = ROOT) -> list[str]:
    return [f for f in git_files(root, "*.py") if f.split("/", 1)[0] in PYTHON_DIRS]


def project_data_files(root: Path = ROOT) -> list[str]:
    """The other files of the Python directories (package data, .proto, .pyi); Starlark
    (.bzl) belongs to the BUILD files that load it."""
    return [f for f in git_files(root, "*") if f.split("/", 1)[0] in PYTHON_DIRS
            and not f.endswith((".py", ".bzl")) and Path(f).name not in BUILD_FILE_NAMES]


# --- the checks: each returns a list of problems -----------------------------

def check_ownership(project: Project, python_files: list[str], data_files: list[str] = (),
                    root: Path = ROOT) -> list[str]:
    """(a) Each project .py file is in exactly one target's srcs, each other file
    of the Python directories is in some target, and srcs/data files exist."""
    problems = []
    owners: dict[str, list[str]] = {}
    used = set()
    for target in project.targets.values():
        for path in target.src_paths():
            owners.setdefault(path, []).append(target.label)
        for attr in ("srcs", "data", "pyi_srcs"):
            for value in target.strings(attr):
                used.add(join(target.package, value))
                if not is_label(value) and f"//{target.package}:{value}" not in project.targets \
                        and not (root / join(target.package, value)).is_file():
                    problems.append(f"{target.label}: {attr} file {value} does not exist")
    for path in python_files:
        labels = owners.get(path, [])
        if len(labels) != 1:
            problems.append(f"{path} is in the srcs of {len(labels)} targets {labels}, not one")
    problems += [f"{path} is in no target (package data goes in data)" for path in data_files if path not in used]
    return problems


def check_protos(project: Project, proto_files: list[str]) -> list[str]:
    """(b) Each .proto file is in the srcs of a proto_library."""
    in_libraries = {p for t in project.targets.values() if t.kind == "proto_library" for p in t.src_paths()}
    return [f"{path} is in no proto_library" for path in proto_files if path not in in_libraries]


def check_labels(project: Project, root: Path = ROOT) -> list[str]:
    """(c) Internal labels in deps, srcs and data name existing targets (data: or files)."""
    problems = []
    for target in project.targets.values():
        for attr in ("deps", "srcs", "data"):
            for value in target.strings(attr):
                if not is_label(value) and attr != "deps":
                    continue  # a file of the package: check_ownership looks at it
                resolved = resolve(value, target.package)
                if resolved is None:
                    continue
                package, name = resolved
                if f"//{package}:{name}" in project.targets:
                    continue
                file = join(package, name)
                if attr == "data" and (package == target.package or file in project.exported) \
                        and (root / file).is_file():
                    continue
                problems.append(f"{target.label}: {attr} {value} names no target")
    return problems


def allowed_distributions(root: Path = ROOT) -> set[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [spec for extra in project["optional-dependencies"].values()
                                       for spec in extra]
    return {normalise(re.match(r"[A-Za-z0-9._-]+", spec).group(0)) for spec in specs}


def check_requirements(project: Project, allowed: set[str]) -> list[str]:
    """(d) Each requirement() names a distribution declared in pyproject.toml."""
    return [f"{t.label}: requirement({name!r}) is not in pyproject.toml's dependencies or extras"
            for t in project.targets.values() for name in t.requirements() if normalise(name) not in allowed]


def module_table(project: Project) -> dict[str, str]:
    """Module name -> label of the target whose srcs hold it (also via `imports`)."""
    table = {}
    for target in project.targets.values():
        if target.kind not in PY_RULES:
            continue
        roots = [""] + [os.path.normpath(join(target.package, i)) for i in target.strings("imports")]
        for path in target.src_paths():
            for base in roots:
                base = "" if base == "." else base
                if base and not path.startswith(base + "/"):
                    continue
                relative = path[len(base) + 1:] if base else path
                module = relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
                table.setdefault(module, target.label)
    return table


def imports_of(path: Path, module: str) -> set[str]:
    """Dotted names a file imports: `from a.b import c` gives a.b.c (the caller
    falls back to a.b when c is not a module)."""
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            # `from a import *` gives a.*, which falls back to a too.
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    # soundstorm.runtime.client is the checkout's runtime/client (soundstorm/__init__.py).
    return {folder_module(name) for name in names}


def owner_of(name: str, table: dict[str, str]) -> tuple[str, str] | None:
    """(module, label) of the longest prefix of name that a target provides."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        module = ".".join(parts[:end])
        if module in table:
            return module, table[module]
    return None


def direct_deps(project: Project, target: Target) -> set[str]:
    """The internal deps of target, as full labels (//pkg:name)."""
    labels = set()
    for dep in target.strings("deps"):
        resolved = resolve(dep, target.package)
        if resolved is not None:
            labels.add(f"//{resolved[0]}:{resolved[1]}")
    return labels


def closure(project: Project, label: str) -> set[str]:
    """label and everything it depends on, internal labels only."""
    seen, todo = set(), [label]
    while todo:
        current = todo.pop()
        if current not in seen and current in project.targets:
            seen.add(current)
            todo += direct_deps(project, project.targets[current])
    return seen


def check_internal_imports(project: Project, root: Path = ROOT) -> list[str]:
    """(e) A target's deps cover the project modules that its sources import.

    The target that owns an imported module must be the target itself or one
    of its direct deps; and the targets that own the packages above the
    target's own modules (whose __init__.py runs first) must be reachable
    through its deps."""
    problems = []
    table = module_table(project)
    own_names = PROJECT_PACKAGES | {m.split(".")[0] for m in table}
    for target in project.targets.values():
        if target.kind not in PY_RULES:
            continue
        direct = direct_deps(project, target) | {target.label}
        reachable = closure(project, target.label)
        for path in target.src_paths():
            module = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
            parts = module.split(".")
            for end in range(1, len(parts)):
                parent = table.get(".".join(parts[:end]))
                if parent and parent not in reachable:
                    problems.append(f"{target.label}: {path} is in package {'.'.join(parts[:end])}, "
                                    f"but {parent} is not reachable from its deps")
            missing: dict[str, set[str]] = {}
            for name in sorted(imports_of(root / path, module)):
                if name.split(".")[0] not in own_names:
                    continue
                found = owner_of(name, table)
                if found is None:
                    if name.split(".")[0] in PROJECT_PACKAGES:
                        problems.append(f"{target.label}: {path} imports {name}, which no target provides")
                    continue
                imported, owner = found
                if owner not in direct:
                    missing.setdefault(owner, set()).add(imported)
            problems += [f"{target.label}: {path} imports {', '.join(sorted(modules))} "
                         f"from {owner}, which is not in its deps" for owner, modules in sorted(missing.items())]
    return problems


def check_external_imports(project: Project, allowed: set[str], root: Path = ROOT) -> list[str]:
    """(e) Third-party modules a target's sources import come from its requirement()s
    (a distribution that is no direct dependency of the project: from the one
    that brings it in, see TRANSITIVE)."""
    problems = []
    table = module_table(project)
    own_names = PROJECT_PACKAGES | {m.split(".")[0] for m in table}
    distributions = importlib.metadata.packages_distributions()
    for target in project.targets.values():
        if target.kind not in PY_RULES:
            continue
        required = {normalise(r) for label in closure(project, target.label)
                    for r in project.targets[label].requirements()}
        direct = {normalise(r) for r in target.requirements()}
        for path in target.src_paths():
            module = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
            tops = {n.split(".")[0] for n in imports_of(root / path, module)}
            for top in sorted(tops - own_names - set(sys.stdlib_module_names) - {"__future__"}
                              - HAND_INSTALLED):
                candidates = {normalise(d) for d in distributions.get(top, [])}
                if not candidates:
                    problems.append(f"{path}: imports {top}, which no installed distribution provides")
                    continue
                declared = candidates & allowed
                if declared:
                    if not declared & direct:
                        problems.append(f"{target.label}: {path} imports {top} without "
                                        f"requirement({sorted(declared)[0]!r})")
                    continue
                bringers = {normalise(TRANSITIVE[c]) for c in candidates if c in TRANSITIVE}
                if not bringers & required:
                    problems.append(f"{target.label}: {path} imports {top} ({sorted(candidates)}), "
                                    "which no requirement of it brings in")
    return problems


def check_acyclic(project: Project) -> list[str]:
    """(f) The internal dependency graph has no cycle."""
    problems, state = [], {}

    def visit(label: str, stack: list[str]) -> None:
        state[label] = "open"
        target = project.targets[label]
        for dep in sorted(direct_deps(project, target)):
            if dep not in project.targets:
                continue
            if state.get(dep) == "open":
                problems.append("cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[label] = "done"

    for label in sorted(project.targets):
        if label not in state:
            visit(label, [label])
    return problems


def check_loads(project: Project) -> list[str]:
    """Every rule a BUILD file calls is load()ed there, unless Bazel provides it."""
    return [f"{path}: {rule}() is used but not loaded" for path, used in sorted(project.used.items())
            for rule in sorted(used - NATIVE - project.loaded.get(path, set()))]


def check_kinds(project: Project) -> list[str]:
    """The shape asked of the BUILD: a py_test per tests/test_*.py, declared with the
    pytest_test macro, that runs pytest on it, a py_binary per benchmarks/*.py and for apps/cli/__main__.py, a
    py_proto_library per proto_library."""
    problems = []
    owner = {p: t for t in project.targets.values() for p in t.src_paths()}
    main_modules = {t.attrs.get("main_module") for t in project.targets.values() if t.kind == "py_binary"}
    for path in project_python_files():
        target = owner.get(path)
        if target is None:
            continue
        if re.fullmatch(r"tests/test_\w+\.py", path) and target.kind != "py_test":
            problems.append(f"{path} is in a {target.kind}, not a py_test")
        if (path.startswith("benchmarks/") or path == "apps/cli/__main__.py") \
                and target.kind != "py_binary" and Path(path).stem not in main_modules:
            problems.append(f"{path} is run as a script but no py_binary runs it")
    for target in project.targets.values():
        if target.kind == "py_test" and target.attrs.get("generator_function") != "pytest_test":
            problems.append(f"{target.label} is a hand-written py_test: declare it with "
                            "pytest_test (tests/pytest.bzl)")
        if target.kind == "py_test" and not (
                target.attrs.get("main_module") == "pytest" and "pytest" in target.requirements()
                and all(f"$(rootpath {src})" in target.strings("args") for src in target.strings("srcs"))):
            problems.append(f"{target.label} does not run pytest on its srcs")
    protos = {f"//{t.package}:{d.lstrip(':')}" for t in project.targets.values()
              if t.kind == "py_proto_library" for d in t.strings("deps")}
    problems += [f"{label} has no py_proto_library" for label, t in project.targets.items()
                 if t.kind == "proto_library" and label not in protos]
    return problems


# --- the tests ---------------------------------------------------------------

@pytest.fixture(scope="module")
def project() -> Project:
    return load_project()


@pytest.fixture(scope="module")
def allowed() -> set[str]:
    return allowed_distributions()


def test_the_build_files_parse_and_load_the_rules_they_use(project):
    assert {"soundstorm", "soundstorm/data", "apps/evaluation", "export", "protos", "runtime/codec",
            "runtime/frontend", "runtime/serving", "tests", "benchmarks"} <= project.packages
    assert check_loads(project) == []


def test_every_python_file_is_in_exactly_one_target(project):
    files = project_python_files()
    assert "soundstorm/model.py" in files and "tests/test_build.py" in files
    assert "runtime/frontend/phonemes_v1.txt" in project_data_files()
    assert check_ownership(project, files, project_data_files()) == []


def test_every_proto_is_in_a_proto_library(project):
    protos = git_files(ROOT, "*.proto")
    assert protos
    assert check_protos(project, protos) == []


def test_every_internal_label_names_a_target(project):
    assert check_labels(project) == []


def test_every_requirement_is_a_declared_distribution(project, allowed):
    assert check_requirements(project, allowed) == []


def test_deps_cover_the_project_modules_each_target_imports(project):
    assert check_internal_imports(project) == []


def test_third_party_imports_come_from_the_targets_requirements(project, allowed):
    assert check_external_imports(project, allowed) == []


def test_the_dependency_graph_has_no_cycle(project):
    assert check_acyclic(project) == []


def test_tests_benchmarks_and_the_cli_have_their_kinds_of_target(project):
    assert check_kinds(project) == []


# (f) The same checks catch a broken copy of the BUILD.

def _break(project: Project, label: str, attr: str, change) -> Project:
    broken = copy.deepcopy(project)
    broken.targets[label].attrs[attr] = change(list(broken.targets[label].attrs.get(attr, [])))
    return broken


def test_a_file_left_out_of_srcs_is_caught(project):
    broken = _break(project, "//soundstorm:soundstorm", "srcs", lambda s: [f for f in s if f != "model.py"])
    assert check_ownership(broken, project_python_files()) == [
        "soundstorm/model.py is in the srcs of 0 targets [], not one"]


def test_a_file_in_two_targets_is_caught(project):
    broken = _break(project, "//soundstorm:soundstorm", "srcs", lambda s: s + ["data/loader.py"])
    problems = check_ownership(broken, project_python_files())
    assert len(problems) == 1 and problems[0].startswith("soundstorm/data/loader.py is in the srcs of 2 targets")


def test_package_data_left_out_is_caught(project):
    broken = _break(project, "//runtime/frontend:frontend", "data", lambda d: [])
    assert check_ownership(broken, project_python_files(), project_data_files()) == [
        f"runtime/frontend/phonemes_{version}.txt is in no target (package data goes in data)"
        for version in ("v1", "v2")]


def test_a_missing_source_file_is_caught(project):
    broken = _break(project, "//export:export", "srcs", lambda s: s + ["gone.py"])
    assert check_ownership(broken, project_python_files()) == ["//export:export: srcs file gone.py does not exist"]


def test_a_proto_outside_any_proto_library_is_caught(project):
    broken = copy.deepcopy(project)
    del broken.targets["//protos:model_contract_proto"]
    assert check_protos(broken, git_files(ROOT, "*.proto")) == ["protos/model_contract.proto is in no proto_library"]


def test_a_dep_on_a_missing_target_is_caught(project):
    broken = _break(project, "//export:export", "deps", lambda d: d + ["//soundstorm:nonexistent", "//nowhere"])
    assert check_labels(broken) == ["//export:export: deps //soundstorm:nonexistent names no target",
                                    "//export:export: deps //nowhere names no target"]


def test_an_undeclared_requirement_is_caught(project, allowed):
    broken = _break(project, "//runtime/codec:codec", "deps", lambda d: d + [Requirement("left-pad")])
    assert check_requirements(broken, allowed) == [
        "//runtime/codec:codec: requirement('left-pad') is not in pyproject.toml's dependencies or extras"]


def test_a_missing_internal_dep_is_caught(project):
    broken = _break(project, "//export:export", "deps", lambda d: [x for x in d if x != "//protos"])
    problems = check_internal_imports(broken)
    assert problems == [f"//export:export: export/{name}.py imports protos.model_contract_pb2 "
                        "from //protos:protos, which is not in its deps"
                        for name in ("contract", "tpu", "warmup")]


def test_a_missing_parent_package_is_caught(project):
    broken = _break(project, "//runtime/codec:codec", "deps", lambda d: [x for x in d if x != "//runtime"])
    problems = check_internal_imports(broken)
    assert len(problems) == 6  # codec's six files
    assert problems[0] == ("//runtime/codec:codec: runtime/codec/__init__.py is in package runtime, "
                           "but //runtime:runtime is not reachable from its deps")


def test_a_missing_requirement_is_caught(project, allowed):
    broken = _break(project, "//runtime/codec:codec", "deps",
                    lambda d: [x for x in d if x != Requirement("ai-edge-litert")])
    assert check_external_imports(broken, allowed) == [
        "//runtime/codec:codec: runtime/codec/lyra.py imports ai_edge_litert without requirement('ai_edge_litert')"]


def test_a_py_test_that_runs_nothing_is_caught(project):
    broken = copy.deepcopy(project)
    del broken.targets["//tests:test_model"].attrs["main_module"]
    assert check_kinds(broken) == ["//tests:test_model does not run pytest on its srcs"]


def test_a_cycle_is_caught(project):
    broken = _break(project, "//soundstorm:soundstorm", "deps", lambda d: d + ["//export"])
    assert any(p.startswith("cycle: ") and "//export:export" in p for p in check_acyclic(broken))


def test_a_glob_is_refused():
    with pytest.raises(BuildError, match="unsupported expression"):
        parse_build('py_library(name = "x", srcs = glob(["*.py"]))', "pkg", "pkg/BUILD", Project())


def test_an_unloaded_rule_is_caught():
    broken = Project()
    parse_build('py_library(name = "x", srcs = ["x.py"])', "pkg", "pkg/BUILD", broken)
    assert check_loads(broken) == ["pkg/BUILD: py_library() is used but not loaded"]


# --- formatting ----------------------------------------------------------------

def test_buildifier_finds_nothing_to_fix():
    buildifier = shutil.which("buildifier")
    if buildifier is None:
        pytest.skip("buildifier is not installed: no PyPI package ships it; "
                    "`npm install -g @bazel/buildifier@8.2.1` does")
    files = [str(p) for p in build_files(ROOT)] + [str(ROOT / "MODULE.bazel")]
    done = subprocess.run([buildifier, "--mode=check", "--lint=warn", *files],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_macro_declares_what_bazel_would(project):
    # tests/pytest.bzl run as Python: the py_test Bazel gets for one line of tests/BUILD.
    target = project.targets["//tests:test_masking"]
    assert (target.kind, target.strings("srcs"), target.attrs["main_module"]) == \
        ("py_test", ["test_masking.py"], "pytest")
    assert target.strings("args") == ["-p", "no:cacheprovider", "$(rootpath test_masking.py)"]
    assert target.strings("data")[0] == "//:pyproject.toml"
    assert ":conftest" in target.strings("deps") and "pytest" in target.requirements()


def test_a_hand_written_py_test_is_caught(project):
    broken = copy.deepcopy(project)
    target = broken.targets["//tests:test_masking"]
    del target.attrs["generator_function"]
    assert check_kinds(broken) == [
        "//tests:test_masking is a hand-written py_test: declare it with pytest_test "
        "(tests/pytest.bzl)"]
