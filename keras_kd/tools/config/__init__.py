"""Run configs for `keras-kd distill CONFIG`: read, override, validate.

- `validate.py`: the top level (`load`, `validate`, `config_hash`, `dump`);
- `files.py`: reading YAML/TOML and `--set KEY=VALUE` overrides;
- `checker.py`: `ConfigError` and the collector of a config's problems;
- `models.py`: teacher and student specs;
- `terms.py`: `imports:`, `method:` and `terms:`, read from the registry;
- `sections.py`: the dataset, optimizer, export and teacher_cache sections.

The schema is documented in the configs guide (docs/config.md).
"""
