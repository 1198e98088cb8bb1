"""Every Python code block of the guides runs.

Each page of docs/*.md is run in a fresh Python process: its ```python
blocks in order, in one namespace (a ```python setup block is an ordinary
block the site renders collapsed). The process runs in a temporary folder
that holds links to the repository's read-only inputs (saved_models/*,
recipes/), so the paths in the guides read as from the repository root,
and whatever a block writes (runs/, students/, caches/) lands in the
temporary folder, never in the repository.

A block that cannot run here (it needs a download, a GPU, CIFAR-100 or
several machines) is fenced ```python skip-test <why>; those are counted,
named, and must be listed in SKIPPED below, so a new one is a decision.

The pages run on the TensorFlow backend (a page may choose another
backend itself, before it imports Keras, as the backends page does for
JAX); in the JAX pass of the test suite these tests skip, saying so.
"""

import concurrent.futures
import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")
FENCE = re.compile(r"^```python(?: (?P<kind>setup|skip-test)(?: (?P<why>[^\n]*))?)?\n"
                   r"(?P<code>.*?)^```[ \t]*$", re.M | re.S)
# Pages whose blocks run together take at most this long (seconds).
TIMEOUT = int(os.environ.get("KERAS_KD_TEST_TIMEOUT", "900"))
# How many blocks of each page the tests do not run (each says why).
SKIPPED = {
    "scaling.md": 2,     # several machines (MultiWorkerMirroredStrategy); a TPU
}
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def blocks(path):
    """[(line, kind, why, code)] of the ```python blocks of a page."""
    with open(path) as handle:
        text = handle.read()
    out = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        out.append((line, match.group("kind"), match.group("why"), match.group("code")))
    return out


def pages():
    """Guide pages (docs/*.md) with at least one Python block."""
    names = sorted(f for f in os.listdir(DOCS) if f.endswith(".md"))
    return [n for n in names if blocks(os.path.join(DOCS, n))]


def script(page):
    """A Python program that runs the page's blocks in order, one namespace,
    each compiled under its page and line for tracebacks."""
    parts = ["namespace = {'__name__': '__main__'}"]
    for line, kind, _, code in blocks(os.path.join(DOCS, page)):
        if kind == "skip-test":
            continue
        label = f"docs/{page}:{line}"
        parts.append(f"print('--- running {label}', flush=True)")
        parts.append(f"exec(compile({textwrap.dedent(code)!r}, {label!r}, 'exec'), namespace)")
    return "\n".join(parts) + "\n"


def workdir(tmp):
    """A temporary folder that reads like the repository root."""
    os.makedirs(os.path.join(tmp, "saved_models"))
    for name in os.listdir(os.path.join(ROOT, "saved_models")):
        os.symlink(os.path.join(ROOT, "saved_models", name),
                   os.path.join(tmp, "saved_models", name))
    os.symlink(os.path.join(ROOT, "recipes"), os.path.join(tmp, "recipes"))
    return tmp


def run_page(page, tmp):
    folder = workdir(os.path.join(tmp, page[:-3]))
    program = os.path.join(folder, "_page.py")
    with open(program, "w") as handle:
        handle.write(script(page))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    try:
        done = subprocess.run([sys.executable, program], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        return done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as error:
        return -1, f"timed out after {TIMEOUT} s\n{error.stdout or ''}{error.stderr or ''}"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Runs every page, two at a time; {page: (returncode, output)}."""
    if BACKEND != "tensorflow":
        pytest.skip(f"the guides' code blocks run in the TensorFlow pass (backend: {BACKEND})")
    tmp = str(tmp_path_factory.mktemp("guides"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {page: pool.submit(run_page, page, tmp) for page in pages()}
        return {page: future.result() for page, future in futures.items()}


@pytest.mark.parametrize("page", pages())
def test_the_guide_runs(page, results):
    returncode, output = results[page]
    assert returncode == 0, f"docs/{page} failed:\n{output[-6000:]}"


def skipped_blocks():
    return [(page, line, why) for page in pages()
            for line, kind, why, _ in blocks(os.path.join(DOCS, page)) if kind == "skip-test"]


def test_blocks_that_do_not_run_are_few_named_and_listed():
    found = skipped_blocks()
    counts = {page: sum(1 for p, _, _ in found if p == page) for page, _, _ in found}
    assert {p: n for p, n in counts.items() if n} == {p: n for p, n in SKIPPED.items() if n}, (
        "skip-test blocks changed; update SKIPPED in this test:\n"
        + "\n".join(f"  docs/{p}:{line}: {why}" for p, line, why in found))
    for page, line, why in found:
        assert why and why.strip(), f"docs/{page}:{line}: say why the block cannot run"


@pytest.mark.parametrize("where", [f"docs/{p}:{line}: {why}" for p, line, why in skipped_blocks()])
def test_not_run_here(where):
    pytest.skip(f"not run by the tests: {where}")


def test_setup_blocks_come_first():
    for page in pages():
        kinds = [kind for _, kind, _, _ in blocks(os.path.join(DOCS, page))]
        if "setup" in kinds:
            assert kinds.index("setup") == 0 and kinds.count("setup") == 1, page
