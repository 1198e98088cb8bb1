"""Tooling built on the library: the `keras-kd` command (`cli`), run configs
(`config`: schema and validation, `run_config`: the run), `bench` and its
report, the `demo` and `timing` helpers. The library core imports nothing
from here."""
