"""The package's layout: the floors of the README's layout section, no import
circle, and what `import zoo` loads."""

import ast
import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "zoo")

# The README's "Layout of the repository": a module may import only from its
# own floor and those below.
FLOORS = {
    "zoo.errors": 1, "zoo.runtime": 1, "zoo.precision": 1, "zoo.files": 1,
    "zoo.provenance": 1, "zoo.plotting": 1, "zoo.references": 1,
    "zoo.engine": 2, "zoo.layers": 2, "zoo.initializers": 2, "zoo.regularizers": 2,
    "zoo.data": 2,
    "zoo.registry": 3, "zoo.models": 3,
    "zoo.pretrained": 4, "zoo.inference": 4, "zoo.evaluation": 4, "zoo.model_cards": 4,
    "zoo.export": 4,
    "zoo.training": 5,
    "zoo.research": 6, "zoo.publish": 6,
    "zoo.campaign": 7, "zoo.cli": 7, "zoo.__main__": 7, "zoo": 7,
}
# What `import zoo` must not load.
NOT_AT_IMPORT = ("zoo.training", "zoo.research", "zoo.publish", "zoo.campaign", "zoo.cli",
                 "zoo.export")


def _modules():
    """{module name: path} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                parts = os.path.relpath(path, REPO_ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def _imports(path, modules):
    """The zoo modules a file imports, at any depth of its code."""
    targets = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names if a.name.startswith("zoo"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zoo"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                targets.add(submodule if submodule in modules else node.module)
    return targets


def _floor(module):
    while module not in FLOORS:
        module = module.rpartition(".")[0]
    return FLOORS[module]


def test_every_import_goes_to_the_same_floor_or_below():
    modules = _modules()
    upward = [(m, t) for m, path in modules.items() for t in _imports(path, modules)
              if _floor(t) > _floor(m)]
    assert not upward, f"imports that run up the floors of the README's layout: {upward}"


def test_no_import_circle_between_modules():
    modules = _modules()
    graph = {m: {t for t in _imports(p, modules) if t in modules and t != m}
             for m, p in modules.items()}
    # A package's face imports its own modules; theirs importing it back
    # would be a circle too, so faces are kept as they are.
    state, circles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in graph[node]:
            if state.get(target) == "open":
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not circles, circles


def test_import_zoo_loads_no_training_research_or_publishing_code():
    code = ("import sys, zoo; print(sorted(m for m in sys.modules if m.startswith('zoo')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, "ZOO_QUIET": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = eval(proc.stdout.strip().splitlines()[-1])
    assert "zoo.pretrained.loader" in loaded and "zoo.models.hamiltonian" in loaded
    assert not [m for m in loaded if m.startswith(NOT_AT_IMPORT)], loaded


def test_the_floors_cover_every_module_and_the_readme_names_every_package():
    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    section = readme[readme.index("## Layout of the repository"):]
    for module in _modules():
        _floor(module)  # raises KeyError for a module of no floor
        top = module.split(".")[1] if "." in module else None
        if top and top != "__main__":
            path = f"zoo/{top}/" if os.path.isdir(os.path.join(PACKAGE, top)) else f"zoo/{top}.py"
            assert path in section, f"{path} is missing from the README's layout section"


def test_ci_runs_the_readmes_test_command_and_installs_what_it_needs():
    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    command = re.search(r'^pip install "\.\[test\]" && (python -m pytest.*)$', readme, re.M)
    assert command, "the README's test command is missing"
    ci = open(os.path.join(REPO_ROOT, ".ci", "run")).read()
    assert command.group(1) in ci.splitlines(), (command.group(1), ci)
    # `-n` is pytest-xdist's option: the test extra must install it.
    setup = open(os.path.join(REPO_ROOT, "setup.cfg")).read()
    extra = setup[setup.index("test =\n"):].split("\n\n")[0]
    assert ("-n " not in command.group(1)) or "pytest-xdist" in extra, extra
