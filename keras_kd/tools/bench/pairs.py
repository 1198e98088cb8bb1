"""The teacher/student pairs `keras-kd bench` trains (`PAIRS`), by name.

Plain data, no Keras: the command line lists the pairs in `--help` without
importing Keras or TensorFlow.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Pair:
    """A dataset and the teacher/student builders the benchmark trains."""

    dataset: str
    teacher: str
    student: str
    teacher_file: str
    matched_student: str = None  # zoo name; None when `student` is width-matched
    epochs: int = 10
    teacher_epochs: int = 20
    batch_size: int = 64
    train_size: int = None
    description: str = ""


PAIRS = {
    "digits-cnn": Pair(
        "digits", "digits_teacher", "digits_thin_student", "digits_teacher.keras",
        matched_student="digits_matched_student", epochs=20, teacher_epochs=30,
        batch_size=32,
        description="shipped 289k-param digits CNN → 6.4k-param thin CNN "
        "(FSP: 93k-param width-matched CNN)",
    ),
    "fmnist-cnn": Pair(
        "fashion_mnist", "fmnist_teacher", "fmnist_student",
        "fashion_mnist_teacher.keras", epochs=6, teacher_epochs=8,
        batch_size=64, train_size=15000,
        description="122k-param CNN (3 convs per stage) → 24k-param CNN "
        "(1 conv per stage, same widths, like ResNet32x4 → ResNet8x4)",
    ),
    "fmnist-mlp": Pair(
        "fashion_mnist", "hinton_teacher", "hinton_tiny", "fashion_mnist_hinton_teacher.keras",
        epochs=10, teacher_epochs=20, batch_size=128,
        description="Hinton et al.'s 2×1200 dropout MLP → 2×30 MLP (logit methods only)",
    ),
    "cifar100-resnet": Pair(
        "cifar100", "resnet32x4", "resnet8x4", "cifar100_resnet32x4.keras",
        epochs=240, teacher_epochs=240, batch_size=64,
        description="ResNet32x4 → ResNet8x4 (RepDistiller); needs a GPU",
    ),
    "cifar100-wrn": Pair(
        "cifar100", "wrn_40_2", "wrn_16_2", "cifar100_wrn_40_2.keras",
        epochs=240, teacher_epochs=240, batch_size=64,
        description="WRN-40-2 → WRN-16-2 (RepDistiller); needs a GPU",
    ),
}
