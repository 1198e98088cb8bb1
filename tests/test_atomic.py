"""keras_kd.atomic: the one way keras-kd replaces a file or a directory."""

import ast
import json
import os

import pytest

from keras_kd import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_write_json_and_text_land_whole_and_leave_nothing_beside(tmp_path):
    path = tmp_path / "sub" / "record.json"
    atomic.write_json(str(path), {"a": [1, 2]}, indent=1, sort_keys=True)
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    atomic.write_text(str(tmp_path / "sub" / "notes.md"), "é\n")
    assert (tmp_path / "sub" / "notes.md").read_text(encoding="utf-8") == "é\n"
    assert sorted(os.listdir(tmp_path / "sub")) == ["notes.md", "record.json"]


def test_a_failed_write_keeps_the_old_file_and_never_touches_a_users_tmp(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    (tmp_path / "results.json.tmp").write_text("the user's own file")
    with pytest.raises(TypeError):
        atomic.write_json(str(path), {"bad": object()})
    assert path.read_text() == '{"old": true}'
    atomic.write_json(str(path), {"new": True})
    assert json.loads(path.read_text()) == {"new": True}
    assert sorted(os.listdir(tmp_path)) == ["results.json", "results.json.tmp"]
    assert (tmp_path / "results.json.tmp").read_text() == "the user's own file"


def _renames(path):
    """`os.replace`/`os.rename` calls in a module."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in ("replace", "rename")
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"]


def test_keras_atomic_is_the_only_module_that_renames_files_into_place():
    found = {}
    for folder, _, names in os.walk(os.path.join(ROOT, "keras_kd")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                lines = _renames(path)
                if lines:
                    found[os.path.relpath(path, ROOT)] = lines
    assert list(found) == [os.path.join("keras_kd", "atomic.py")], found
