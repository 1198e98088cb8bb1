"""Smoke test of benchmarks/perf_matrix.py: one tiny configuration, one step.

Checks only that the rows are produced and finite, never timing values.
"""

import math
import os
import sys

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def test_perf_matrix_produces_finite_rows():
    sys.path.insert(0, BENCHMARKS)
    try:
        import perf_matrix
    finally:
        sys.path.remove(BENCHMARKS)
    result = perf_matrix.run(["graph-f32"], ["kd"], rounds=1, steps=1, cached=True,
                             keras_rows=False, log=lambda message: None)
    assert result["failures"] == {}
    ratios = result["ratios"]
    assert set(ratios) == {"graph-f32/kd", "graph-f32/kd:cached"}
    assert set(ratios["graph-f32/kd:cached"]) == {"ratio", "ratio_live"}
    for series in ratios.values():
        for values in series.values():
            assert len(values) == 1 and all(math.isfinite(v) and v > 0 for v in values)
    table = perf_matrix.tables(result["ms_per_step"], ratios, result["failures"],
                               result["configs"])
    assert "| kd | " in table and "kd, cached teacher ÷ live floor" in table
