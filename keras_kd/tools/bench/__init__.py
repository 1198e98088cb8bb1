"""`keras-kd bench`: every method against the scratch student, over seeds.

- `command.py`: the command (pairs, the plan of runs, resuming);
- `train.py`: one training run (a student, a method, a seed);
- `report.py`: the markdown table and plot, from the per-run results;
- `results.py`: result files, written atomically, and the machine they ran on;
- `pairs.py`: the teacher/student pairs by name, and `arguments.py`: the
  command's flags (neither imports Keras: `--help` stays fast).
"""
