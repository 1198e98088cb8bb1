"""Reading run-config files (YAML, TOML) and applying `--set KEY=VALUE` overrides.

Nothing here validates: `read` returns the raw mapping, `apply_overrides` a
copy with the overrides set; `keras_kd.tools.config.validate.load` validates after.
"""

import copy
import os
import re

import yaml

from keras_kd.tools.config.checker import ConfigError


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-4` as a string; read it as a float (YAML 1.2)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _mapping_without_duplicates(loader, node, deep=False):
    """A YAML mapping; a key given twice is an error, not "the last one wins"."""
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` keys are meant to be overridden
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # let PyYAML report unhashable keys its own way
        if key in seen:
            raise ConfigError([
                f"key '{key}' is given twice (lines {seen[key] + 1} and "
                f"{key_node.start_mark.line + 1}); the first value would be silently "
                "dropped. Keep one of them."
            ], source=getattr(loader, "name", None) or key_node.start_mark.name)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _toml_duplicate(path, error):
    """TOML refuses a repeated key as "Cannot overwrite a value (at line N...)";
    name the key too."""
    match = re.search(r"line (\d+)", str(error))
    if not ("overwrite" in str(error) or "twice" in str(error)) or not match:
        return None
    line_number = int(match.group(1))
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    text = lines[line_number - 1].strip() if 0 < line_number <= len(lines) else ""
    key = text.split("=", 1)[0].strip() if "=" in text else text.strip("[] ")
    return ConfigError([
        f"key '{key}' is given twice (again at line {line_number}); TOML allows each "
        "key once. Keep one of them."
    ], source=path)


def parse_value(text):
    """A `--set` value as YAML: `0.5` -> 0.5, `5e-4` -> 0.0005, `null` -> None,
    `[150, 180]` -> a list, anything else a string."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def read(path):
    """The raw mapping in a `.yaml`/`.yml`/`.toml` file (not validated)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError([f"config file '{path}' does not exist"])
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".toml":
            import tomllib

            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        elif ext in (".yaml", ".yml"):
            with open(path, encoding="utf-8") as handle:
                data = yaml.load(handle, Loader=_Loader)
        else:
            raise ConfigError([f"config file '{path}': expected a .yaml, .yml or .toml file"])
    except ConfigError:
        raise
    except Exception as error:  # yaml.YAMLError, tomllib.TOMLDecodeError
        if ext == ".toml":
            duplicate = _toml_duplicate(path, error)
            if duplicate is not None:
                raise duplicate from None
        raise ConfigError([f"cannot parse: {error}"], source=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"the file must hold a mapping of keys, got {type(data).__name__}"],
                          source=path)
    return data


_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)?((?:\[\d+\])*)$")


def _split_key(key):
    parts = []
    for piece in key.split("."):
        if piece.isdigit():
            parts.append(int(piece))
            continue
        match = _PART.match(piece)
        if not match or not (match.group(1) or match.group(2)):
            raise ConfigError([f"--set {key}: '{piece}' is not a key or [index]"])
        if match.group(1):
            parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def apply_overrides(data, overrides):
    """Returns a copy of `data` with `["dataset.batch_size=32", ...]` applied.

    Keys are dotted paths; list items are `terms[0].weight` or `terms.0.weight`;
    values are read as YAML (`parse_value`). Missing mappings are created.

    >>> apply_overrides({"dataset": {"name": "digits"}}, ["dataset.batch_size=32"])
    {'dataset': {'name': 'digits', 'batch_size': 32}}
    """
    data = copy.deepcopy(data)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. dataset.batch_size=32"])
        key, text = item.split("=", 1)
        parts = _split_key(key.strip())
        node = data
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(str(p) for p in parts[: depth + 1])
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError([f"--set {key}: '{where}' is not an existing list item"])
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise ConfigError([f"--set {key}: '{where}' is inside a non-mapping"])
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ConfigError([f"--set {key}: no list item {last} to set"])
        elif not isinstance(node, dict):
            raise ConfigError([f"--set {key}: cannot set '{last}' inside a non-mapping"])
        node[last] = parse_value(text)
    return data
