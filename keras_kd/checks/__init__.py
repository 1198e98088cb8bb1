"""Every check keras-kd runs on its arguments, models and data, in one place.

One concern per module; import the module you need (this package imports
none of them, so `keras_kd.checks.numbers` stays free of Keras):

- `numbers`: what counts as a number (`is_real`, `is_integer`,
  `as_python`) and the numeric arguments: `check_weight`,
  `check_temperature`, `check_kd_temperature`, `check_fraction`,
  `check_chunk_size`, `check_epochs`, `check_flag`, `check_ignore_index`.
- `tensors`: shapes of the tensors losses receive: `check_logit_pair`,
  `check_mask`, `check_feature_map`, `check_same_shape`, `describe_shape`.
- `terms`: a Distiller's terms against it and its models, when it is
  built: `check_terms` (`claim_terms`, `check_single_logit`).
- `compile`: `Distiller.compile`'s loss and metrics against a logits
  student: `check_student_loss`, `check_metrics`.
- `data`: what is passed to `fit`/`predict`, before the first step:
  `check_fit_data`, `check_predict_data` and their parts.
- `batches`: each batch inside the train/test step: `check_batch`,
  `check_label_values`, `with_label_checks`, `label_classes`.
- `guards`: run-time guards `fit`/`evaluate` add: an epoch or an evaluation
  that reads no batch raises (`guard_fit`, `guard_evaluate`).
- `models`: the teacher and student a `Distiller` is given, and its
  terms list, before anything is built (`check_models`, `check_losses`).
"""
