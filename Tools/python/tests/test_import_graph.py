"""The package's modules import one way: no file imports a file that imports it back, directly or
through others (issue: a house a newcomer can live in). Relative imports anywhere in a file count,
including those inside functions, since a lazy import is still a dependency."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinyshard")


def module_name(path):
    rel = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
    return "tinyshard" if rel == "__init__" else "tinyshard." + rel.removesuffix(".__init__")


def imports_of(path, name):
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            if not node.module:
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinyshard"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tinyshard"))
    return found


def graph():
    files = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                files[module_name(path)] = path
    # A package's __init__ re-exporting its modules is not a loop of those modules.
    return {name: {t for t in imports_of(path, name) if t in files and t != name and not name.startswith(t + ".")
                   and not (t == "tinyshard" or files[t].endswith("__init__.py"))}
            for name, path in files.items()}


def test_no_module_imports_one_that_imports_it_back():
    edges = graph()
    cycles = []

    def visit(node, stack, on_stack, done):
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt in on_stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        on_stack.discard(node)
        stack.pop()
        done.add(node)

    done = set()
    for node in sorted(edges):
        if node not in done:
            visit(node, [], set(), done)
    assert not cycles, "import loops: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_imports():
    edges = graph()
    assert "tinyshard.augment" in edges["tinyshard.replay"]
    assert "tinyshard.imagestore" in edges["tinyshard.imagestore_writer"]
