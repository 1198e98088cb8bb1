"""Feature taps: one forward pass of a model that returns its logits and
every named feature a term reads.

- `views.py`: `ModelView`, the one-pass view of a Functional or Sequential
  model, and the tap names (`"logits"`, `"layer"`, `"layer:input"`).
- `nested.py`: layers inside nested models (`"backbone/block_3"`), and the
  one predicate of what counts as a graph (Functional/Sequential) model.
- `outputs.py`: models with several outputs (`"output:name"` taps, label
  dicts).
"""

from keras_kd.taps.outputs import LOGITS
from keras_kd.taps.views import ModelView

__all__ = ["LOGITS", "ModelView"]
