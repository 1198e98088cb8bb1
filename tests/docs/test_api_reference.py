"""The site builds with `mkdocs build --strict` (no broken link, no missing
reference), and its API reference documents every public name of the
public namespaces at exactly one path. Skipped without MkDocs
(`pip install -e ".[docs]"`)."""

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACES = (
    "keras_kd", "keras_kd.losses", "keras_kd.taps", "keras_kd.teachers",
    "keras_kd.teachers.caching", "keras_kd.regimes", "keras_kd.regimes.schedules",
    "keras_kd.callbacks", "keras_kd.datasets", "keras_kd.export", "keras_kd.distribute",
    "keras_kd.zoo", "keras_kd.zoo.recipes",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason='the docs build needs pip install -e ".[docs]"')
    pytest.importorskip("mkdocstrings_handlers.python",
                        reason='the docs build needs pip install -e ".[docs]"')
    out = str(tmp_path_factory.mktemp("site"))
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", out],
                          cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out


def documented(site):
    """{page: [object paths with a heading]} of the API reference."""
    out = {}
    for page in sorted(glob.glob(os.path.join(site, "api", "*", "index.html"))):
        with open(page) as handle:
            html = handle.read()
        ids = re.findall(r'<h\d id="(keras_kd[\w.]*)" class="doc doc-heading"', html)
        out[os.path.basename(os.path.dirname(page))] = ids
    return out


def package():
    import griffe

    return griffe.load("keras_kd", search_paths=[ROOT], resolve_aliases=True,
                       resolve_external=False)


def test_the_site_builds_strict(site):
    assert os.path.exists(os.path.join(site, "index.html"))


def test_every_namespace_has_a_page(site):
    roots = {ids[0] for ids in documented(site).values() if ids}
    for namespace in NAMESPACES[1:]:
        assert namespace in roots, namespace
    assert "keras_kd.Distiller" in roots


def test_each_public_object_appears_at_one_path(site):
    pkg = package()
    seen = {}
    for page, ids in documented(site).items():
        root = ids[0]
        for path in ids[1:]:
            if path.count(".") != root.count(".") + 1:
                continue                         # a method or attribute of a class
            obj = pkg[path[len("keras_kd."):]]
            target = obj.final_target.path if obj.is_alias else obj.path
            seen.setdefault(target, []).append(path)
    twice = {target: paths for target, paths in seen.items() if len(paths) > 1}
    assert not twice, twice


def test_every_name_in_all_is_documented(site):
    pkg = package()
    paths = {path for ids in documented(site).values() for path in ids}
    for namespace in NAMESPACES[1:]:
        module = pkg[namespace[len("keras_kd."):]]
        for name in module.exports or ():
            member = module[name]
            target = member.final_target if member.is_alias else member
            if target.is_module:
                continue
            assert f"{namespace}.{name}" in paths, f"{namespace}.{name}"
