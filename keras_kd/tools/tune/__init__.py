"""`keras-kd tune`: search a method's hyperparameters on a validation split.

- `command.py`: the command (the split, the search, its outputs);
- `search.py`: the KerasTuner side (each method's search space, the hypermodel);
- `report.py`: the best setting as a run config, the trials as a table;
- `arguments.py`: the command's flags (no Keras import: `--help` stays fast).
"""
