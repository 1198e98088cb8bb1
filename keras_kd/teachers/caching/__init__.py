"""A cache of teacher outputs per sample and augmented view, replayed in
training: the teacher runs once, not once per epoch.

One module per part of the job:

- `teacher_cache.py`: `cache(...)` / `build(...)` and `TeacherCache`, which
  tie the parts together and refuse a cache made with other settings, data
  or teacher;
- `compute.py`: one teacher pass over every view of every sample;
- `replay.py`: the training pipelines that replay the outputs with their
  inputs;
- `store.py`: the on-disk layout (parts, manifest, lock);
- `views.py`: sample fingerprints and augmentation views (`crop_flip`);
- `augment.py`: stateless augmentations (`CropFlip`, `Mixup`,
  `with_batched`);
- `tail.py`: the classes outside a top-k cache, quantized;
- `digest.py`: what identifies a teacher (architecture and weights).
"""

from keras_kd.teachers.caching.augment import CropFlip, Mixup, with_batched
from keras_kd.teachers.caching.teacher_cache import TeacherCache, build, cache
from keras_kd.teachers.caching.views import crop_flip

__all__ = ["CropFlip", "Mixup", "TeacherCache", "build", "cache", "crop_flip", "with_batched"]
