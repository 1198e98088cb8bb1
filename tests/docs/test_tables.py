"""The results tables of the README and the docs are rendered from the runs'
JSON by docs/gen_tables.py, never typed by hand: each generated block must
equal what the generator makes of the JSON now, and the generator's
numbers must agree with the JSON computed independently here."""

import importlib.util
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generator():
    spec = importlib.util.spec_from_file_location(
        "gen_tables", os.path.join(ROOT, "docs", "gen_tables.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def test_every_generated_table_is_up_to_date():
    stale = generator().stale()
    assert not stale, ("generated tables differ from their JSON in "
                       f"{sorted(os.path.relpath(p, ROOT) for p in stale)}; "
                       "run python docs/gen_tables.py")


def test_each_table_is_where_the_docs_say():
    gen = generator()
    assert gen.blocks(read("README.md")) == ["headline"]
    assert "bench-fmnist-cnn-e15" in gen.blocks(read("docs", "benchmarks.md"))
    assert "migration-digits" in gen.blocks(read("docs", "migration.md"))
    assert "segmentation" in gen.blocks(read("docs", "dense.md"))
    used = {name for path in gen.files() for name in gen.blocks(read(path))}
    assert used == set(gen.GENERATORS)


def test_the_bench_table_is_the_bench_reports_own():
    from keras_kd.tools.bench.report import format_table

    data = json.loads(read("docs", "bench", "fmnist-cnn-e15", "summary.json"))
    assert format_table(data["teacher"], data["summary"]) in read("docs", "benchmarks.md")


def test_the_headline_numbers_follow_from_the_raw_accuracies():
    """Recomputed from the per-seed accuracies, not from the summary's means."""
    readme = read("README.md")
    rows = {s["method"]: s for s in
            json.loads(read("docs", "bench", "fmnist-cnn-e15", "summary.json"))["summary"]}
    scratch = dict(zip(rows["scratch"]["seeds"], rows["scratch"]["accuracies"]))
    for method in ("dist", "kd_ls"):
        acc = dict(zip(rows[method]["seeds"], rows[method]["accuracies"]))
        diffs = np.array([acc[s] - scratch[s] for s in acc])
        values = np.array(list(acc.values()))
        assert f"{values.mean():.2f} ± {values.std():.2f}" in readme
        assert f"{diffs.mean():+.2f} ± {diffs.std(ddof=1):.2f}" in readme
        assert ", ".join(f"{d:+.2f}" for d in diffs) in readme
    migration = json.loads(read("docs", "migration", "digits.json"))["accuracy"]
    keras_acc = 100 * np.array(migration["keras.distillation"])
    ours = 100 * np.array(migration["keras_kd + from_keras"])
    assert f"{keras_acc.mean():.1f} ± {keras_acc.std():.1f}" in readme
    assert f"{ours.mean():.1f} ± {ours.std():.1f}" in readme
    assert f"{(ours - keras_acc).mean():+.1f}" in readme
