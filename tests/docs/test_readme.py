"""The README is a front door: at most 200 lines, the quick-start commands
CI runs, links that resolve, no development history, and a snippet that
runs (here on the embedded digits instead of Fashion-MNIST, see below)."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK_START = (
    "pip install -e . && keras-kd demo",
    'pip install -e ".[test]" && python -m pytest -q && KERAS_BACKEND=jax python -m pytest -q && KERAS_BACKEND=torch python -m pytest -q',
)
# The snippet trains on Fashion-MNIST for 15 epochs (minutes, and the data
# may need a download); the test runs the same code on the embedded digits
# for one epoch. Each replacement must find its text, so the snippet cannot
# drift away from what is run.
SMOKE = (
    ('"fashion_mnist"', '"digits"'),
    ('"fashion_mnist_teacher.keras"', '"digits_teacher.keras"'),
    ("keras_kd.zoo.fmnist_student()", "keras_kd.zoo.digits_student()"),
    ('recipe("dist", 15,', 'recipe("dist", 1,'),
)
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
HEX_HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def test_the_readme_has_at_most_200_lines():
    assert len(read("README.md").splitlines()) <= 200


def test_the_quick_start_commands_are_there_and_ci_runs_the_second():
    readme, ci = read("README.md"), read(".ci", "run")
    for command in QUICK_START:
        assert f"\n{command}\n" in readme, command
    assert f"\n{QUICK_START[1]}\n" in ci


def anchors(path):
    """The heading anchors of a Markdown page, as MkDocs makes them."""
    slugs = set()
    for line in read(path).splitlines():
        match = re.match(r"#+ (.*)", line)
        if match:
            text = re.sub(r"[`*]", "", match.group(1)).strip().lower()
            slugs.add(re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text)))
    return slugs


def test_every_relative_link_of_the_readme_resolves():
    for target in re.findall(r"\]\(([^)]+)\)", read("README.md")):
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        assert os.path.exists(os.path.join(ROOT, path)), target
        if anchor:
            assert anchor in anchors(path), target


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md")))
def test_user_docs_carry_no_issue_numbers_or_commit_hashes(page):
    text = read(page)
    assert not re.search(r"\bissue\s*#?\d+", text, re.I), page
    assert not HEX_HASH.findall(text), (page, HEX_HASH.findall(text))


def test_the_snippet_runs(tmp_path):
    if BACKEND != "tensorflow":
        pytest.skip(f"the README snippet runs in the TensorFlow pass (backend: {BACKEND})")
    blocks = re.findall(r"^```python\n(.*?)^```$", read("README.md"), re.M | re.S)
    assert len(blocks) == 1
    code = blocks[0]
    for old, new in SMOKE:
        assert old in code, old
        code = code.replace(old, new)
    os.symlink(os.path.join(ROOT, "saved_models"), tmp_path / "saved_models")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True,
                          timeout=int(os.environ.get("KERAS_KD_TEST_TIMEOUT", "900")))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    accuracy = float(done.stdout.strip().splitlines()[-1])
    assert 0.0 <= accuracy <= 1.0
    assert (tmp_path / "fmnist_student.keras").exists()
