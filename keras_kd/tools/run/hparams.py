"""A run's hyperparameters in TensorBoard's HParams dashboard.

`write_hparams(log_dir, cfg)` writes, once per run, the resolved config's
settings (flattened to dotted keys: `optimizer.learning_rate`,
`terms[0].temperature`, `dataset.validation_split`, ...) as an HParams
session summary (`tensorboard.plugins.hparams.api.hparams`) into the run's
`logs/` folder, beside the `train/` and `validation/` runs that Keras's
`TensorBoard` callback writes there, so the dashboard lists the run with its
settings and its epoch metrics.
"""

import glob
import os

# Where the run's files go, not what it trains: left out of the dashboard.
_LEFT_OUT = ("output_dir", "export", "imports")


def flat_hparams(cfg):
    """`{dotted key: bool | int | float | str}` of a resolved config; None is
    left out, lists become their text."""
    out = {}

    def visit(key, value):
        if value is None:
            return
        if isinstance(value, dict):
            for name, item in value.items():
                visit(f"{key}.{name}" if key else str(name), item)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                visit(f"{key}[{i}]", item)
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:
            out[key] = str(value)

    for name, value in cfg.items():
        if name not in _LEFT_OUT:
            visit(name, value)
    return out


def write_hparams(log_dir, cfg, config_hash=None):
    """Writes the HParams summary of `cfg` into `log_dir`, unless an earlier
    attempt of the same run (resumed) already did; returns the values."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = flat_hparams(cfg)
    if config_hash is not None:
        values["config_hash"] = config_hash
    if glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        return values  # a resumed run: its session is already there
    os.makedirs(log_dir, exist_ok=True)
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hp.hparams(values)
    writer.close()
    return values
