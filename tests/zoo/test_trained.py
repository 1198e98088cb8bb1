"""`keras_kd.zoo.find_trained` / `load_trained`: an explicit path, then
./saved_models/, then the copy shipped inside the package (what a wheel
installed anywhere has)."""

import os

import pytest

import keras_kd
from keras_kd.tools import demo
from keras_kd.zoo import find_trained, load_trained

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = ("digits_teacher.keras", "fashion_mnist_teacher.keras")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_packaged_teachers_are_the_repositorys(name):
    # examples/train_*teacher.py write saved_models/: copy them to keras_kd/data/ too.
    with open(os.path.join(ROOT, "keras_kd", "data", name), "rb") as packaged, \
            open(os.path.join(ROOT, "saved_models", name), "rb") as repository:
        assert packaged.read() == repository.read()


def test_the_package_copy_is_found_from_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_trained("digits_teacher.keras") == os.path.join(
        os.path.dirname(keras_kd.__file__), "data", "digits_teacher.keras")
    assert demo.find_teacher() == find_trained("digits_teacher.keras")
    assert demo.find_saved_model("fashion_seg_teacher.keras") is None  # not shipped


def test_saved_models_in_the_current_folder_come_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("saved_models")
    open(os.path.join("saved_models", "digits_teacher.keras"), "wb").close()
    assert find_trained("digits_teacher.keras") == os.path.join(
        str(tmp_path), "saved_models", "digits_teacher.keras")
    mine = tmp_path / "mine.keras"
    mine.write_bytes(b"")
    assert find_trained("digits_teacher.keras", path=str(mine)) == str(mine)
    with pytest.raises(FileNotFoundError, match="No model at"):
        find_trained("digits_teacher.keras", path=str(tmp_path / "missing.keras"))
    with pytest.raises(FileNotFoundError, match="No teacher at"):
        demo.find_teacher(str(tmp_path / "missing.keras"))


def test_load_trained_names_the_places_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        load_trained("no_such_teacher.keras")
    message = str(error.value)
    assert os.path.join(str(tmp_path), "saved_models", "no_such_teacher.keras") in message
    assert os.path.join("keras_kd", "data", "no_such_teacher.keras") in message


def test_load_trained_loads_the_shipped_digits_teacher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher = load_trained("digits_teacher.keras")
    assert teacher.name == "digits_teacher"
    assert teacher.count_params() == keras_kd.zoo.digits_teacher().count_params()
