"""The imports point down (docs/architecture.md): checked on the tree, and the checker itself
checked on a small tree that breaks each rule once."""

import importlib.util
import textwrap
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "import_graph.py"
_spec = importlib.util.spec_from_file_location("import_graph", TOOL)
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)


@pytest.fixture(scope="module")
def graph():
    return import_graph.part_graph()


def test_no_import_breaks_the_layering(graph):
    assert import_graph.violations(*graph) == []


def test_the_parts_form_no_cycle(graph):
    assert import_graph.cycles(graph[0]) == []


def test_benchmark_scripts_share_code_through_apps_bench_only():
    assert import_graph.sibling_imports() == []


def test_the_layers_the_architecture_page_names_are_the_checked_ones(graph):
    internal, _ = graph
    # Every part of the tree is either in a layer or an app or a benchmark script.
    unknown = {part for part in internal if part not in import_graph.BELOW_APPS
               and part.split(".")[0] not in ("apps", "benchmarks")}
    assert unknown == set()
    assert {"protos", "soundstorm", "export", "runtime.client", "runtime.serving",
            "runtime.savedmodel", "apps.cli"} <= set(internal)


BROKEN = {
    "protos/__init__.py": "",
    "runtime/__init__.py": "",
    "runtime/savedmodel/__init__.py": "",
    "runtime/serving/__init__.py": "import runtime.savedmodel\n",
    # The client reaches into the server: a sibling of its layer.
    "runtime/client/__init__.py": "from runtime.serving import server\n",
    # runtime imports JAX.
    "runtime/codec/__init__.py": "import jax\n",
    "runtime/frontend/__init__.py": "",
    # A runtime package the layering does not place.
    "runtime/newpkg/__init__.py": "import jax\n",
    # The core imports TensorFlow, and an app.
    "soundstorm/__init__.py": "import tensorflow as tf\nfrom apps.cli import main\n",
    "soundstorm/data/__init__.py": "from ..model import x\n",
    "soundstorm/model.py": "",
    "export/__init__.py": "import soundstorm.model\nfrom runtime.savedmodel import layout\n",
    "apps/__init__.py": "",
    "apps/cli/__init__.py": "import export\nimport runtime.client\nimport apps.corpus\n",
    "apps/corpus/__init__.py": "import apps.cli\n",
    "benchmarks/speed.py": "import sys\nsys.path.insert(0, '.')\nfrom other import f\n",
    "benchmarks/other.py": "import apps.cli\n",
}


def test_the_checker_finds_each_broken_rule(tmp_path):
    for name, text in BROKEN.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    internal, external = import_graph.part_graph(tmp_path)
    assert import_graph.violations(internal, external) == [
        "runtime.newpkg is in no layer of LAYERS",
        "runtime.client imports runtime.serving",
        "soundstorm imports apps.cli",
        "runtime.codec imports jax",
        "soundstorm imports tensorflow",
    ]
    # apps.cli <-> apps.corpus, and soundstorm -> apps.cli -> export -> soundstorm: one group.
    assert import_graph.cycles(internal) == [["apps.cli", "apps.corpus", "export", "soundstorm"]]
    assert import_graph.sibling_imports(tmp_path) == [
        "benchmarks/speed.py edits sys.path", "benchmarks/speed.py imports its sibling other"]
    # Relative imports resolve: soundstorm/data's `..model` is the core's own module.
    assert "soundstorm" not in internal.get("soundstorm", set())


def test_the_project_is_imported_under_its_one_package_name():
    """`soundstorm.runtime...`, never `runtime...`: the wheel installs nothing else at the top
    level (soundstorm/__init__.py), so a bare name would work in a checkout only."""
    import ast
    from soundstorm import SUBPACKAGE_FOLDERS
    bare = []
    for path in import_graph.python_files() + sorted((import_graph.ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            bare += [f"{path.relative_to(import_graph.ROOT)}: {name}" for name in names
                     if name.split(".")[0] in SUBPACKAGE_FOLDERS]
    assert bare == []
