"""The package's layout stays readable: no import cycle between its modules, and no module of the
package imported inside a function (a helper living in the wrong home hides that way).

The import graph is read from the source with ``ast`` (nothing is imported). Run as a script, it
prints the graph: ``python tests/test_layout.py``.
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scripts" / "bpnet"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, here: str, is_package: bool, modules: set[str]) -> list[str]:
    """bpnet modules an import statement names (``from bpnet.x import y`` may name module x.y)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            pkg = here.split(".") if is_package else here.split(".")[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join(pkg + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    else:
        return []
    return sorted({n for n in names if n == "bpnet" or n.startswith("bpnet.")})


def import_graph():
    """``({module: {imported module}}, [(module, line, imported) inside a function])``."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    graph, nested = {}, []
    for path in files:
        here = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        deps = set()
        for node in tree.body:
            deps.update(imported_modules(node, here, path.name == "__init__.py", modules))
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    for dep in imported_modules(node, here, path.name == "__init__.py", modules):
                        nested.append((here, node.lineno, dep))
        graph[here] = {d for d in deps if d in modules and d != here}
    return graph, nested


def find_cycle(graph):
    """One cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_package_import_graph_has_no_cycle():
    graph, _ = import_graph()
    assert len(graph) > 20  # the package was found
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_of_the_package_is_imported_inside_a_function():
    _, nested = import_graph()
    assert nested == [], "\n".join(f"{m}:{line} imports {dep} inside a function" for m, line, dep in nested)


if __name__ == "__main__":
    graph, _ = import_graph()
    for module in sorted(graph):
        print(f"{module:32s} -> {', '.join(sorted(graph[module])) or '-'}")
    cycle = find_cycle(graph)
    print("cycle:", " -> ".join(cycle) if cycle else "none")
    sys.exit(1 if cycle else 0)
