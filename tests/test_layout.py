"""The code's map is the papers' map: utils/common (both papers), utils/hmt (Hold me tight!),
utils/nad (NADs); the two paper packages never import each other, nothing imports upwards
(models <- utils.common <- utils.hmt, utils.nad <- utils.figures <- scripts), there are no import
cycles, no folder of utils/ holds more than 14 modules, and library functions stay short (60
lines) and take few parameters (10), unless a comment above them says why."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# layer of each package: a module may import its own layer and the layers below
LAYERS = {"models": 0, "utils.common": 1, "utils.hmt": 2, "utils.nad": 2, "utils.figures": 3,
          "utils.campaign": 3, "benchmarks": 4, "scripts": 4, "tests": 5}
LONG_REASON = "# longer than 60 lines:"


def modules():
    """{dotted name: path} of every module of models/, utils/, scripts/, benchmarks/."""
    found = {}
    for top in ("models", "utils", "scripts", "benchmarks"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(p for p in parts if p != "__init__")] = path
    return found


def package_of(name):
    return max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len,
               default=None)


def imports_of(name, path):
    """The project modules ``name`` imports (absolute names), with the line of each."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[:len(parent) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            out.append((base, node.lineno))
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return [(m, line) for m, line in out if package_of(m)]


def test_no_upward_imports_and_the_papers_apart():
    wrong = []
    for name, path in modules().items():
        own = package_of(name)
        for imported, line in imports_of(name, path):
            other = package_of(imported)
            if LAYERS[other] > LAYERS[own] or (LAYERS[other] == LAYERS[own] and other != own):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    mods = modules()
    graph = {n: {m for m, _ in imports_of(n, p) if m in mods and m != n}
             for n, p in mods.items()}
    state = {}

    def visit(n, stack):
        state[n] = "open"
        for m in graph[n]:
            if state.get(m) == "open":
                raise AssertionError(" -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m, stack + [m])
        state[n] = "done"
    for n in graph:
        if n not in state:
            visit(n, [n])


@pytest.mark.parametrize("folder", ["utils", "utils/common", "utils/hmt", "utils/nad"])
def test_no_folder_of_utils_holds_more_than_14_modules(folder):
    modules = [p for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 14, sorted(p.name for p in modules)


def _functions(path):
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            above = lines[first - 2].strip() if first >= 2 else ""
            yield node, above


def test_library_functions_are_short_and_take_few_parameters():
    """At most 60 lines unless the line above the function says why ("# longer than 60
    lines: ..."); at most 10 parameters (settings go in a dataclass config)."""
    long, many = [], []
    for path in list((ROOT / "utils").rglob("*.py")) + list((ROOT / "models").rglob("*.py")):
        for node, above in _functions(path):
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            length = node.end_lineno - node.lineno + 1
            if length > 60 and not above.startswith(LONG_REASON):
                long.append(f"{where} ({length} lines)")
            a = node.args
            params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs
                      if p.arg not in ("self", "cls")]
            if len(params) > 10:
                many.append(f"{where} ({len(params)} parameters)")
    assert not long and not many, "\n".join(long + many)


def test_benchmarks_import_neither_tests_nor_private_names():
    wrong = []
    for path in (ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] == "tests":
                    wrong.append(f"{path.name}: imports {node.module}")
                wrong += [f"{path.name}: imports {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_")]
    assert not wrong, wrong


def test_test_modules_share_helpers_not_each_other():
    """Tests import shared code from tests/helpers.py, the oracles and the tiny datasets, never
    from another test module."""
    shared = {"tests.helpers", "tests.oracles", "tests.nad_oracles", "tests.tiny_datasets",
              "tests.distributed_worker", "tests.conftest"}
    wrong = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("tests.") and node.module not in shared:
                wrong.append(f"{path.relative_to(ROOT)} imports {node.module}")
    assert not wrong, wrong
