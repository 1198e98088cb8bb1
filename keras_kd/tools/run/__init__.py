"""Running a validated run config (`keras-kd distill`): build, train,
evaluate, export.

- `runner.py`: `run(config)`, the whole run;
- `builders.py`: models, terms and optimizer from the config;
- `data.py`: the configured dataset as batched pipelines;
- `cache.py`: the cached training pipeline of a `teacher_cache:` section;
- `output.py`: the output folder (config copy, results, exports, resuming).
"""
