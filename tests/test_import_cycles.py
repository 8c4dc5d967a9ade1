"""No import circles: the modules of the package form a tree of imports, not a tangle.

The graph is read from the source (`ast`), so a circle is caught even where Python happens to
import it in an order that works today.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llm_notebook"
#: The HTTP layer and its plugins: no circle through them at all, not even through imports
#: made inside functions.
HTTP_LAYER = {"llm_notebook.http", "llm_notebook.http_errors", "llm_notebook.http_pools",
              "llm_notebook.deadlines", "llm_notebook.http_models", "llm_notebook.endpoints",
              "llm_notebook.default_plugins.openai_compat",
              "llm_notebook.default_plugins.anthropic",
              "llm_notebook.default_plugins.openai_endpoints",
              "llm_notebook.default_plugins.openai_chat",
              "llm_notebook.default_plugins.openai_models",
              "llm_notebook.default_plugins.anthropic_messages"}


def module_files() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test)


def _imports(tree: ast.Module, *, at_import_time: bool):
    """The import statements of a module: those run when it is imported (not in functions,
    not under `if TYPE_CHECKING:`), or with `at_import_time=False` every one."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif at_import_time and (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.Lambda)) or _is_type_checking(node)):
            continue
        else:
            pending.extend(ast.iter_child_nodes(node))


def _targets(module: str, is_package: bool, node, known: set[str]) -> set[str]:
    """The package's modules an import statement runs: the named ones and their packages,
    but for the importing module's own packages, which Python has begun to import before it."""
    if isinstance(node, ast.ImportFrom):
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        source = ".".join(filter(None, [base if node.level else "", node.module or ""]))
        names = [source] + [f"{source}.{alias.name}" for alias in node.names]
    else:
        names = [alias.name for alias in node.names]
    found = set().union(*(_with_packages(name) for name in names)) & known
    return found - _with_packages(module)


def _with_packages(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_graph(*, at_import_time: bool) -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: set().union(*(_targets(module, path.name == "__init__.py", node, known)
                                  for node in _imports(ast.parse(path.read_text()),
                                                       at_import_time=at_import_time)))
            for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle, as the path around it, found by depth-first search."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_modules_import_each_other_without_circles():
    assert cycles(import_graph(at_import_time=True)) == []


def test_no_circle_runs_through_the_http_layer_even_inside_functions():
    through_http = [cycle for cycle in cycles(import_graph(at_import_time=False))
                    if HTTP_LAYER & set(cycle)]
    assert through_http == []


def test_every_module_imports_first_in_a_fresh_interpreter():
    """Each module imported before any other module of the package, as a user's first import
    of it would be: a circle shows up as an ImportError on some order."""
    code = f"""
import importlib, json, sys
failures = {{}}
for name in {sorted(module_files())!r}:
    for loaded in [m for m in sys.modules if m == "llm_notebook" or m.startswith("llm_notebook.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures[name] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(failures))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PACKAGE.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {}


def test_the_checks_see_a_circle(tmp_path):
    """The graph reader finds a planted circle, so the tests above can fail."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    tree = ast.parse("from .http import x\nimport llm_notebook.keys\n"
                     "def f():\n    from . import batch\n")
    known = {"llm_notebook", "llm_notebook.http", "llm_notebook.keys", "llm_notebook.batch"}
    at_import = set().union(*(_targets("llm_notebook.endpoints", False, node, known)
                              for node in _imports(tree, at_import_time=True)))
    assert at_import == {"llm_notebook.http", "llm_notebook.keys"}
    anywhere = set().union(*(_targets("llm_notebook.endpoints", False, node, known)
                             for node in _imports(tree, at_import_time=False)))
    assert "llm_notebook.batch" in anywhere
