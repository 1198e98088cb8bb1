"""examples/fsp_ensemble.py: FSP students with different shuffles form an
ensemble (tiny settings)."""

import os

import numpy as np
import pytest

from tests.helpers.example_scripts import EXAMPLES, load_example


@pytest.mark.slow
def test_fsp_students_with_different_shuffles_form_an_ensemble():
    import keras

    example = load_example("fsp_ensemble")
    teacher = keras.saving.load_model(os.path.join(os.path.dirname(EXAMPLES), "saved_models", "digits_teacher.keras"))
    students = example.train_students(teacher, count=2, epochs=1, fsp_epochs=1)
    single, ensemble = example.evaluate(students)
    assert len(single) == 2 and 0.0 <= ensemble <= 1.0
    # The ensemble is the argmax of the mean of the students' probabilities.
    x, y = example.datasets.load("digits", "test", as_numpy=True)
    mean = (example.probabilities(students[0], x) + example.probabilities(students[1], x)) / 2
    assert ensemble == pytest.approx(float((mean.argmax(-1) == y).mean()))
    for student, accuracy in zip(students, single):
        assert accuracy == pytest.approx(float((example.probabilities(student, x).argmax(-1) == y).mean()))


@pytest.mark.slow
def test_the_fsp_shuffle_alone_makes_the_students_different():
    import keras

    example = load_example("fsp_ensemble")
    teacher = keras.saving.load_model(os.path.join(os.path.dirname(EXAMPLES), "saved_models", "digits_teacher.keras"))

    def kernel(shuffle):
        # seed=0, count=1: the same initial weights and batches every time,
        # so only the FSP target's shuffle can tell the runs apart.
        (student,) = example.train_students(teacher, count=1, epochs=1, fsp_epochs=1,
                                            shuffle=shuffle, seed=0)
        return student.get_layer("stage1_conv").kernel.numpy()

    shuffled, again, plain = kernel(True), kernel(True), kernel(False)
    np.testing.assert_allclose(shuffled, again, atol=1e-6)  # reproducible
    assert np.abs(shuffled - plain).max() > 100 * max(np.abs(shuffled - again).max(), 1e-6)
