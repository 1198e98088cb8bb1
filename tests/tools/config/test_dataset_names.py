"""Dataset names are checked when a config is validated (`--validate-only`
too): the embedded 'digits', the local ones, and TensorFlow Datasets names
looked up in TFDS's registry of builders, without downloading anything. A
misspelt name is one problem with a suggestion, not TFDS's list of 400
names twice and two tracebacks at run time."""

import os

import pytest

from keras_kd import datasets
from keras_kd.tools import cli
from keras_kd.tools.config import validate as config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")
CIFAR_DKD = os.path.join(ROOT, "recipes", "cifar100", "resnet32x4_resnet8x4_dkd.yaml")


def _config(name, **dataset):
    return {"teacher": None, "student": "digits_student", "epochs": 1, "output_dir": "runs/x",
            "dataset": {"name": name, **dataset}}


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to read or download a TFDS dataset fails the test."""
    import tensorflow_datasets as tfds

    def refuse(*args, **kwargs):
        raise AssertionError("validation must not load or download a dataset")

    monkeypatch.setattr(tfds, "load", refuse)
    monkeypatch.setattr(tfds, "builder", refuse)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


@pytest.mark.parametrize("name, suggestion", [("digitz", "digits"),
                                              ("fashion_mnistt", "fashion_mnist"),
                                              ("cifar1000", "cifar100"),
                                              ("imagenet2021", "imagenet2012")])
def test_a_misspelt_dataset_is_one_problem_with_a_suggestion(no_download, name, suggestion):
    with pytest.raises(config.ConfigError) as error:
        config.validate(_config(name))
    assert error.value.problems == [
        f"dataset.name: Unknown dataset '{name}': not the embedded 'digits', a local dataset "
        "(fashion_mnist, mnist, cifar10, cifar100) or a TensorFlow Datasets name; "
        f"did you mean '{suggestion}'?"]


@pytest.mark.parametrize("name", ["digits", "mnist", "cifar100", "imagenet2012", "glue/cola",
                                  "mnist:3.0.1", "glue/cola:2.0.0", "huggingface:mnist"])
def test_known_names_validate_without_downloading(no_download, name):
    assert config.validate(_config(name))["dataset"]["name"] == name


def test_a_prepared_copy_in_data_dir_counts(no_download, tmp_path):
    os.makedirs(tmp_path / "my_private_set" / "1.0.0")
    config.validate(_config("my_private_set", data_dir=str(tmp_path)))
    with pytest.raises(config.ConfigError, match="Unknown dataset 'my_private_set'"):
        config.validate(_config("my_private_set", data_dir=str(tmp_path / "elsewhere")))


def test_loading_a_misspelt_name_fails_in_one_line():
    with pytest.raises(FileNotFoundError) as error:
        datasets.load("digitz", "train")
    assert str(error.value).splitlines() == [
        "Unknown dataset 'digitz': not the embedded 'digits', a local dataset (fashion_mnist, "
        "mnist, cifar10, cifar100) or a TensorFlow Datasets name; did you mean 'digits'?"]


def test_cli_validate_only_reports_a_misspelt_dataset(capsys, no_download):
    code = cli.main(["distill", DIGITS, "--validate-only", "--set", "dataset.name=digitz"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"keras-kd distill: 1 problem in {DIGITS}:",
        "  - dataset.name: Unknown dataset 'digitz': not the embedded 'digits', a local dataset "
        "(fashion_mnist, mnist, cifar10, cifar100) or a TensorFlow Datasets name; did you mean "
        "'digits'?"]


def test_no_file_checks_validates_a_config_whose_teacher_is_not_trained_yet(capsys, tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # no saved_models/cifar100_resnet32x4.keras here
    assert cli.main(["distill", CIFAR_DKD, "--validate-only"]) == 2
    err = capsys.readouterr().err
    assert "teacher: file 'saved_models/cifar100_resnet32x4.keras' does not exist" in err
    assert "--no-file-checks" in err
    assert cli.main(["distill", CIFAR_DKD, "--validate-only", "--no-file-checks"]) == 0
    assert "valid (files not checked)" in capsys.readouterr().out
    # The other checks still run.
    assert cli.main(["distill", CIFAR_DKD, "--validate-only", "--no-file-checks",
                     "--set", "epochs=0"]) == 2
    assert "epochs: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_check_names_docstring_examples_pass():
    from tests.helpers.doctests import assert_doctests

    assert_doctests(datasets, {"check_name": 2})
