"""The layout rules: no import cycle (cycles through a package's `__init__`
counted), imports that point one way (tools -> zoo -> core -> step), one
public path per name, nothing patched in the import system, and modules
named for a concept rather than split into prefix families.

The import graph is read from the source (every `import`, at module level
or inside a function), so a lazy import inside a function counts too.
"""

import ast
import collections
import importlib
import os
import re
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT

PACKAGE = os.path.join(ROOT, "keras_kd")


def _modules():
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def import_graph():
    """`{module: {modules it names in an import}}` over keras_kd."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.add(submodule if submodule in modules else source)
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_an_init():
    # The finder must be able to fail: a package __init__ importing a
    # module that imports the package back is a cycle.
    graph = {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p"}, "q": set()}
    assert cycles(graph) == [["p", "p.a", "p.b"]]


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def _layer(module):
    if module.startswith("keras_kd.tools"):
        return 3
    if module.startswith("keras_kd.zoo"):
        return 2
    return 1


def _reached(graph, start):
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def test_imports_point_one_way_tools_zoo_core_step():
    upward = [
        (module, target)
        for module, targets in import_graph().items()
        for target in targets
        if _layer(target) > _layer(module) and module != "keras_kd"
    ]
    assert upward == []


def test_only_the_distiller_reaches_the_per_backend_steps():
    # The objective, the labels, the checks and balancing never call back
    # into backends/: what they need lives in leaf modules below them.
    users = sorted(
        module
        for module, targets in import_graph().items()
        if any(t.startswith("keras_kd.backends") for t in targets)
        and not module.startswith("keras_kd.backends")
    )
    assert users == ["keras_kd.distiller"]


def test_the_steps_import_only_leaf_modules():
    # The step is the bottom floor: what it imports (batch unpacking, the
    # in-step checks, replica counts) never leads back to the Distiller,
    # the objective or the terms.
    graph = import_graph()
    for backend in ("keras_kd.backends.tensorflow", "keras_kd.backends.jax",
                    "keras_kd.backends.torch"):
        above = sorted(m for m in _reached(graph, backend)
                       if m in ("keras_kd.distiller", "keras_kd.objective")
                       or m.startswith(("keras_kd.losses", "keras_kd.regimes", "keras_kd.teachers")))
        assert above == [], (backend, above)


def test_the_steps_hold_only_the_steps():
    steps = {"tensorflow": "TensorFlowSteps", "jax": "JaxSteps", "torch": "TorchSteps"}
    for backend, steps_name in steps.items():
        tree = ast.parse(open(os.path.join(PACKAGE, "backends", f"{backend}.py")).read())
        top_level = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        public = [name for name in top_level if not name.startswith("_")]
        assert public == [steps_name], public


def _public_names():
    """`{name: [namespaces whose __all__ lists it]}`, over keras_kd's packages."""
    where = collections.defaultdict(list)
    for module, path in _modules().items():
        if not path.endswith("__init__.py"):
            continue
        namespace = importlib.import_module(module)
        for name in getattr(namespace, "__all__", ()):
            attribute = getattr(namespace, name)
            if isinstance(attribute, type(os)):  # a submodule, not a name
                continue
            where[name].append(module)
    return where


def test_every_public_name_has_exactly_one_path():
    where = _public_names()
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
    # And each is reachable at that path.
    for name, (namespace,) in where.items():
        assert getattr(importlib.import_module(namespace), name) is not None


def test_the_top_level_holds_the_distiller_and_the_subpackages_only():
    import keras_kd

    names = {n for n in keras_kd.__all__ if not isinstance(getattr(keras_kd, n), type(os))}
    assert names == {"Distiller", "__version__"}


@pytest.mark.parametrize("old", [
    "keras_kd.bench", "keras_kd.methods", "keras_kd.schedules", "keras_kd.validation",
    "keras_kd.losses.logits", "keras_kd.losses.decoupled", "keras_kd.losses.relational",
    "keras_kd.teachers.cache_store", "keras_kd.tools.config_checker", "keras_kd._aliases",
])
def test_old_paths_are_gone(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_the_per_sample_names_of_0_1_are_gone():
    import keras_kd

    old = ["kd_per_sample", "dkd_per_sample", "nkd_per_sample", "cwd_per_sample",
           "hint_loss_per_sample", "feature_mse_per_sample", "merged_kd_per_sample",
           "partial_l2_per_sample", "hcl_per_sample", "topk_kd_per_sample",
           "attention_transfer_per_sample"]
    assert [n for n in old if hasattr(keras_kd.losses, n)] == []
    # `feature_mse` is now the module of FeatureMSE, not the 0.1 function.
    assert isinstance(keras_kd.losses.feature_mse, type(os))


def test_importing_keras_kd_patches_nothing_in_the_import_system():
    # Keras and TensorFlow are imported first: they install finders of their
    # own (six's meta importer), which are not ours to count.
    code = (
        "import sys\n"
        "import keras, tensorflow\n"
        "before = (list(sys.meta_path), list(sys.path_hooks))\n"
        "import keras_kd, keras_kd.zoo, keras_kd.tools.cli\n"
        "print((list(sys.meta_path), list(sys.path_hooks)) == before)\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_no_folder_splits_a_concept_into_a_prefix_family():
    # A module is named for the concept it holds; three or more siblings
    # sharing a `prefix_` (config_*, cache_*, run_*) is a concept cut up by
    # size, which should be a folder or one module instead.
    families = {}
    for folder, _, files in os.walk(PACKAGE):
        prefixes = collections.Counter(
            re.match(r"_?([a-z]+)_", name).group(1)
            for name in files
            if name.endswith(".py") and re.match(r"_?[a-z]+_", name)
        )
        crowded = {p: n for p, n in prefixes.items() if n >= 3}
        if crowded:
            families[os.path.relpath(folder, ROOT)] = crowded
    assert families == {}


def test_each_loss_module_is_named_after_the_method_it_holds():
    # losses/<module>.py defines the term class and the `<name>_loss`
    # function a reader looks for by the module's name.
    from keras_kd.losses import registry

    ours = [c for n in registry.names() for c in registry._CLASSES[n].values()
            if c.__module__.startswith("keras_kd.")]
    assert len(ours) >= 17
    for cls in ours:
        name, module = cls.__name__, cls.__module__.rpartition(".")[2]
        assert not module.startswith("_"), (name, module)
        source = open(sys.modules[cls.__module__].__file__).read()
        assert re.search(rf"^def \w+_loss\(|^def on_output\(", source, re.M), (name, module)


def test_one_predicate_says_what_a_graph_model_is():
    # Functional / built Sequential: decided in one place (taps/nested.py).
    defined = []
    for module, path in _modules().items():
        source = open(path, encoding="utf-8").read()
        defined += [(module, name) for name in re.findall(r"^def (is_\w+)\(", source, re.M)
                    if "graph" in name or "functional" in name]
        assert source.count("bool(model.inputs) and bool(model.outputs)") == 0 or \
            module == "keras_kd.taps.nested", module
    assert defined == [("keras_kd.taps.nested", "is_graph_model")]
