"""The project's import graph between its parts, checked against the layering and drawn.

A part is a package of the tree (`runtime.client`, `export`, `apps.cli`, ...);
the JAX core is the `soundstorm` package with its subpackages.
LAYERS lists the parts bottom-up with what each may import: the rule of
docs/architecture.md, in code. `tests/test_layering.py` asserts it (no import
outside the rule, no cycle, no TensorFlow in the JAX core, no JAX in runtime);
this script draws the graph, with any import that breaks the rule in red:

    .venv/bin/python tools/import_graph.py --out docs/figures/import-graph-after.png
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from soundstorm import folder_module  # noqa: E402 (the checkout's own package)

PACKAGES = ("protos", "runtime", "soundstorm", "export", "apps", "benchmarks")

# Bottom-up: (part, the parts it may import). A part imports itself freely. Parts of
# one row are independent of each other (the client never imports the server).
LAYERS: tuple[tuple[tuple[str, frozenset[str]], ...], ...] = (
    (("protos", frozenset()),),
    (("runtime.savedmodel", frozenset({"protos"})),
     ("runtime.codec", frozenset({"protos"})),
     ("runtime.frontend", frozenset({"protos"})),
     ("soundstorm", frozenset({"protos"}))),
    (("runtime.serving", frozenset({"protos", "runtime.savedmodel"})),
     ("runtime.client", frozenset({"protos", "runtime.savedmodel", "runtime.codec",
                                   "runtime.frontend"})),
     ("export", frozenset({"protos", "runtime.savedmodel", "soundstorm"}))),
)
BELOW_APPS = frozenset(part for row in LAYERS for part, _ in row)
# The apps may import every part below them and each other (no cycle); benchmark
# scripts stand on the apps and import no sibling.
APPS = ("apps",)
FORBIDDEN_THIRD_PARTY = {
    "soundstorm": ("tensorflow", "tensorflow_serving"),
    "runtime": ("jax", "flax", "optax", "orbax"),
}


def module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def parse(path: Path, attempts: int = 5) -> ast.AST:
    """`ast.parse` of a file, retried on CPython 3.11's spurious SystemError.

    CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, reset
    from the calling thread at each parse, so a parse racing a compile in another thread (a
    lazy import in a server thread an earlier test left) can fail with "AST constructor
    recursion depth mismatch" (python/cpython gh-106905); the same parse then succeeds.
    """
    for attempt in range(attempts):
        try:
            return ast.parse(path.read_text(), str(path))
        except SystemError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            # `from runtime import client` imports the subpackage runtime.client.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    # soundstorm.runtime.client is the checkout's runtime/client (soundstorm/__init__.py).
    return {folder_module(name) for name in names}


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(path for package in PACKAGES for path in (root / package).rglob("*.py")
                  if "__pycache__" not in path.parts)


def part_of(module: str, parts: list[str]) -> str | None:
    """The longest known part that `module` belongs to (None for third-party)."""
    matches = [part for part in parts if module == part or module.startswith(part + ".")]
    return max(matches, key=len) if matches else None


def parts_of_tree(files: list[Path], root: Path = ROOT) -> list[str]:
    """The parts: the layered ones (the core's subpackages belong to the core), each app
    and each benchmark script."""
    parts = set(BELOW_APPS) | {"apps"}
    for path in files:
        folders = path.relative_to(root).parts
        if folders[0] == "benchmarks" or (folders[0] == "apps" and len(folders) > 2):
            # A script, or an app's package.
            parts.add(f"{folders[0]}.{Path(folders[1]).stem}")
    return sorted(parts)


def part_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(part -> parts it imports, part -> third-party top-level modules it imports)."""
    files = python_files(root)
    parts = parts_of_tree(files, root)
    internal: dict[str, set[str]] = defaultdict(set)
    external: dict[str, set[str]] = defaultdict(set)
    for path in files:
        module = module_name(path, root)
        source = part_of(module, parts)
        if source is None:
            if module != "runtime":  # runtime/__init__.py: a bare namespace
                # A module of no known part (runtime/newpkg/, runtime/x.py): the rule must
                # place it before it can be checked.
                internal.setdefault(f"unplaced:{module}", set())
            continue
        internal.setdefault(source, set())
        for name in imports_of(path, root):
            target = part_of(name, parts)
            if target is None:
                external[source].add(name.split(".")[0])
            elif target != source:
                internal[source].add(target)
    return dict(internal), dict(external)


def allowed(source: str, target: str) -> bool:
    if source.startswith("unplaced:"):
        return False
    for row in LAYERS:
        for part, may_import in row:
            if part == source:
                return target in may_import
    if source.startswith("benchmarks"):
        return not target.startswith("benchmarks")
    if source.split(".")[0] in APPS:
        return target in BELOW_APPS or target.split(".")[0] in APPS
    return False  # a part the layering does not know: a subpackage of the core, say


def sibling_imports(root: Path = ROOT) -> list[str]:
    """Benchmark scripts that reach a sibling script (an import of its name, or sys.path
    edited to find one): shared code belongs in apps/bench."""
    scripts = sorted((root / "benchmarks").glob("*.py"))
    names = {path.stem for path in scripts}
    problems = []
    for path in scripts:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                problems.append(f"benchmarks/{path.name} edits sys.path")
                break
        siblings = {name.split(".")[0] for name in imports_of(path, root)} & (names - {path.stem})
        problems += [f"benchmarks/{path.name} imports its sibling {name}"
                     for name in sorted(siblings)]
    return problems


def violations(internal: dict[str, set[str]], external: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the layering, as one line each."""
    problems = [f"{source.removeprefix('unplaced:')} is in no layer of LAYERS"
                for source in sorted(internal) if source.startswith("unplaced:")]
    problems += [f"{source} imports {target}" for source, targets in sorted(internal.items())
                 for target in sorted(targets) if not allowed(source, target)
                 and not source.startswith("unplaced:")]
    for source, modules in sorted(external.items()):
        for banned in FORBIDDEN_THIRD_PARTY.get(source.split(".")[0], ()):
            if banned in modules:
                problems.append(f"{source} imports {banned}")
    return problems


def cycles(internal: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one part (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in internal.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(internal):
        if node not in index:
            visit(node)
    return found


def draw(internal: dict[str, set[str]], out: Path, title: str) -> None:
    """Parts in rows bottom-up (layers, then apps, then benchmarks); allowed imports grey,
    imports that break the rule red."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [[part for part, _ in row] for row in LAYERS]
    known = {part for row in rows for part in row}
    rest = sorted(set(internal) - known)
    rows.append([part for part in rest if not part.startswith("benchmarks")])
    rows.append(["benchmarks (scripts)"] if any(p.startswith("benchmarks") for p in rest)
                else [])
    position = {}
    for y, row in enumerate(rows):
        for x, part in enumerate(row):
            position[part] = ((x + 0.5) / len(row), y)
    merged: dict[str, set[str]] = defaultdict(set)
    for source, targets in internal.items():
        key = "benchmarks (scripts)" if source.startswith("benchmarks") else source
        merged[key].update("benchmarks (scripts)" if t.startswith("benchmarks") else t
                           for t in targets)
    figure, axes = plt.subplots(figsize=(14, 1.9 * len(rows)))
    bad = 0
    for source, targets in merged.items():
        for target in targets:
            if source == target or source not in position or target not in position:
                continue
            ok = source == "benchmarks (scripts)" or allowed(source, target)
            bad += not ok
            axes.annotate("", xy=position[target], xytext=position[source],
                          arrowprops=dict(arrowstyle="->", lw=1.6 if not ok else 0.7,
                                          color="tab:red" if not ok else "0.7",
                                          shrinkA=14, shrinkB=14,
                                          connectionstyle="arc3,rad=0.08"))
    for part, (x, y) in position.items():
        axes.text(x, y, part, ha="center", va="center", fontsize=9,
                  bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.3"))
    axes.set_xlim(-0.05, 1.05)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.axis("off")
    axes.set_title(f"{title}: {bad} imports against the layering (red); arrows point from "
                   "importer to imported, rows bottom-up")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="draw the graph to this PNG")
    parser.add_argument("--title", default="import graph")
    args = parser.parse_args(argv)
    internal, external = part_graph()
    problems = violations(internal, external) + sibling_imports()
    for problem in problems:
        print(problem)
    for group in cycles(internal):
        print("cycle: " + " -> ".join(group))
    if args.out:
        draw(internal, args.out, args.title)
        print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
