"""Layers inside nested models: paths such as `"resnet50/conv4_block6_out"`.

A `keras.applications` backbone used as a layer of a classifier is a model
inside a model: its layers' tensors live in the backbone's own graph, which
the outer graph cannot reach. `open_graph` re-runs the outer model's graph
symbolically on its own inputs and, for each nested model on a requested
path, runs that model's layers one by one instead of calling it as a whole.
The result is one graph that shares every layer and weight with the
original, computes the same outputs, and also exposes the tensors of the
layers inside the opened models. Running it runs each layer once.

Keras propagates `training` from the outer call to every layer of a nested
model (a `training=False` written in the outer graph is overridden, Keras
3.15), and the opened graph does the same, so its outputs equal the model's.
"""

import keras
from keras import tree

SEPARATOR = "/"


def graph_of(model):
    """The Functional graph of a model (a Sequential keeps it inside)."""
    functional = getattr(model, "_functional", None)
    return functional if functional is not None else model


def is_graph_model(layer):
    """True for a Functional or built Sequential model."""
    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.inputs) and bool(layer.outputs)
    except (AttributeError, ValueError):
        return False


def nested_model_names(model):
    """Names of the layers of `model` that are themselves graph models."""
    return [layer.name for layer in getattr(model, "layers", []) if is_graph_model(layer)]


def is_nested_path(model, name):
    """True when `name` is a "model/layer" path that `model.get_layer` does
    not answer itself (a teacher group answers "teacher/layer" on its own)."""
    if SEPARATOR not in name:
        return False
    try:
        model.get_layer(name)
    except ValueError:
        return True
    return False


def resolve(model, path, tap, role):
    """Checks `path` on `model`; returns the nested models it opens.

    Returns the prefixes ("a", "a/b", ...) of the nested models on the path.
    An unknown name raises a ValueError that lists the layers (and nested
    models) at the level where the path went wrong.
    """
    parts = path.split(SEPARATOR)
    level = model
    where = f"the {role} '{model.name}'"
    prefixes = []
    for i, part in enumerate(parts):
        names = [layer.name for layer in level.layers]
        if part not in names:
            inner = nested_model_names(level)
            hint = f" Nested models there: {inner}." if inner else ""
            raise ValueError(
                f"Unknown tap '{tap}': {where} has no layer named '{part}'. "
                f"Layers there: {names}.{hint} Name a layer inside a nested "
                "model as 'model_name/layer_name'."
            )
        layer = level.get_layer(part)
        if i < len(parts) - 1:
            if not is_graph_model(layer):
                raise ValueError(
                    f"Cannot tap '{tap}': '{part}' in {where} is a "
                    f"{type(layer).__name__}, not a nested Functional or "
                    "Sequential model, so nothing can follow it after '/'. "
                    f"Nested models there: {nested_model_names(level)}."
                )
            prefixes.append(SEPARATOR.join(parts[: i + 1]))
            level = layer
            where = f"the nested model '{prefixes[-1]}'"
    return prefixes


def open_graph(model, prefixes):
    """Re-runs `model`'s graph on its own inputs, opening nested models.

    Args:
        model: a Functional or built Sequential model.
        prefixes: paths of the nested models to open ("backbone",
            "backbone/block", ...).

    Returns:
        `(outputs, calls)`: the model's output tensors (a flat list, in the
        order of `model.outputs`) and a dict path -> list of
        `(input_tensors, outputs)`, one entry per call of that layer in the
        new graph.
    """
    graph = graph_of(model)
    calls = {}
    outputs = _run(graph, list(graph.inputs), "", set(prefixes), calls)
    return outputs, calls


def _run(graph, inputs, prefix, expand, calls):
    tensors = {id(x): y for x, y in zip(graph.inputs, inputs)}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            operation = node.operation
            if operation is None or node.is_input:
                continue
            if any(id(x) not in tensors for x in node.input_tensors):
                continue  # not on the way from the inputs (as Keras skips it)
            path = prefix + operation.name
            call_inputs = [tensors[id(x)] for x in node.input_tensors]
            if path in expand:
                inner = graph_of(operation)
                if len(call_inputs) != len(inner.inputs):
                    raise ValueError(
                        f"Cannot open the nested model '{path}': it is called "
                        f"with {len(call_inputs)} tensors but has "
                        f"{len(inner.inputs)} inputs. Tap a layer outside it, "
                        "or build the outer model with the nested model "
                        "called on one tensor per input."
                    )
                result = _run(inner, call_inputs, path + SEPARATOR, expand, calls)
                result = tree.pack_sequence_as(inner._outputs_struct, result)
            else:
                args, kwargs = node.arguments.fill_in(tensors)
                result = operation(*args, **kwargs)
            calls.setdefault(path, []).append((call_inputs, result))
            for x, y in zip(node.outputs, tree.flatten(result)):
                tensors[id(x)] = y
    return [tensors[id(x)] for x in graph.outputs]


def tap_from_calls(calls, path, which, tap, role, model_name):
    """The tensor of `path` ("output" or "input") in an opened graph."""
    found = calls.get(path)
    if not found:
        raise ValueError(
            f"Cannot tap '{tap}' on the {role} '{model_name}': the layer "
            f"'{path}' is not on the way from the model's inputs to its "
            "outputs. Tap a layer the model's outputs depend on."
        )
    if len(found) > 1:
        raise ValueError(
            f"Cannot tap '{tap}' on the {role} '{model_name}': the layer "
            f"'{path}' is used {len(found)} times in the graph, so its "
            "output is ambiguous. Tap the layer that consumes the output you "
            "mean instead."
        )
    call_inputs, result = found[0]
    if which == "input":
        return call_inputs[0] if len(call_inputs) == 1 else call_inputs
    return result


def find_output_layer(model, output_index, predicate):
    """The path of the layer that makes output `output_index` of `model`,
    looking through nested models, if `predicate(layer)` holds; else None."""
    graph = graph_of(model)
    if output_index >= len(graph.outputs):
        return None
    operation, _, tensor_index = graph.outputs[output_index]._keras_history
    if predicate(operation):
        return operation.name
    if is_graph_model(operation):
        inner = find_output_layer(operation, tensor_index, predicate)
        if inner is not None:
            return f"{operation.name}{SEPARATOR}{inner}"
    return None
