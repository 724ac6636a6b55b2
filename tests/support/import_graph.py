"""Which module imports which, read from the source (ast), and the cycles in that graph.

Every import counts, also one inside a function or under `if TYPE_CHECKING:`: a lazy import
only hides a cycle from the interpreter, not from the reader. The implicit import of a parent
package (importing `a.b` runs `a/__init__.py`) is not an edge, as in other import linters.
"""

from __future__ import annotations

import ast
from pathlib import Path

Graph = dict[str, set[str]]


def module_files(import_root: Path, package: str | None = None) -> dict[str, Path]:
    """Module name -> file for every .py under `import_root` (a sys.path entry), or only under
    its `package` folder. `pkg/__init__.py` is module `pkg`."""
    top = import_root / package if package else import_root
    modules = {}
    for path in sorted(top.rglob("*.py")):
        parts = list(path.relative_to(import_root).with_suffix("").parts)
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        if parts[-1] == "__init__":
            parts.pop()
        if parts:
            modules[".".join(parts)] = path
    return modules


def import_graph(import_root: Path, package: str | None = None) -> Graph:
    """Edges module -> module it imports, both among the modules of `module_files()`."""
    files = module_files(import_root, package)
    graph: Graph = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _imported_names(node, name, is_package):
                module = _known_module(target, files)
                if module is not None and module != name:
                    graph[name].add(module)
    return graph


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement imports: `from a import b` gives `a.b`, which is
    module a.b when there is one, else (see _known_module) a name defined in module a."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the module's own package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{alias.name}" if base else alias.name for alias in node.names]


def _known_module(name: str, files: dict[str, Path]) -> str | None:
    """`name` or its longest prefix that is one of the modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in files:
            return candidate
        parts.pop()
    return None


def import_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (as a closed path a -> ... -> a) per group of modules that import each other."""
    cycles = []
    for group in _strongly_connected(graph):
        if len(group) > 1:
            cycles.append(_cycle_through(group, graph))
    return sorted(cycles)


def _strongly_connected(graph: Graph) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on deep graphs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
    return groups


def _cycle_through(group: set[str], graph: Graph) -> list[str]:
    """A closed path inside `group`, from its first module back to it (breadth-first)."""
    start = min(group)
    paths = {successor: [start, successor] for successor in sorted(graph[start] & group)}
    frontier = list(paths)
    while start not in paths:
        next_frontier = []
        for node in frontier:
            for successor in sorted(graph[node] & group):
                if successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    next_frontier.append(successor)
        frontier = next_frontier
    return paths[start]
