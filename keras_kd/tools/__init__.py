"""Tooling built on the library, organised by command: `cli.py` (the
`keras-kd` command), `config/` (run-config schema and validation), `run/`
(running a config), `bench/`, `tune/`, and `demo.py`, with the shared
`flags.py`, `progress.py` and `timing.py`. The library core and the zoo
import nothing from here."""
