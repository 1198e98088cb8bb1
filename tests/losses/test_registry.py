"""The term registry: every term by name, for run configs, tools and errors."""

import keras
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import registry
from keras_kd.tools.config import validate as config
from tests.helpers.models import tiny_cnn

BUILT_IN = ("AttentionTransfer", "DKD", "FSP", "FeatureMSE", "FitNet", "KD", "MLKD", "MergedKD",
            "NKD", "Overhaul", "PKT", "RKD", "ReviewKD", "SP", "TTM", "WTTM")


def test_every_built_in_term_is_registered_and_bases_are_not():
    names = registry.names()
    for name in BUILT_IN:
        assert registry.get(name) is getattr(losses, name)
    for base in ("SinglePairTerm", "MultiPairTerm", "_FlattenedPairTerm", "DistillationLoss"):
        assert base not in names


def test_unknown_name_suggests_and_lists():
    with pytest.raises(ValueError, match=r"Unknown term type 'KDD'\. Did you mean 'KD'\?.*Known: "):
        registry.get("KDD")


def test_a_decorated_term_is_registered_an_undecorated_one_is_not_and_a_clash_is_refused():
    class QuietTerm(losses.DistillationLoss):
        pass

    with pytest.raises(ValueError, match="Unknown term type 'QuietTerm'"):
        registry.get("QuietTerm")

    @losses.register_term
    class ClashTerm(losses.DistillationLoss):
        def call(self, teacher, student, labels=None, training=None):
            return 0.0

    assert registry.get("ClashTerm") is ClashTerm
    first = ClashTerm

    def other_module_class():
        @losses.register_term
        class ClashTerm(losses.DistillationLoss):
            pass
        return ClashTerm

    second = other_module_class()
    with pytest.raises(ValueError, match="defined by 2 classes") as info:
        registry.get("ClashTerm")
    assert "test_registry:" in str(info.value)
    assert first is not second


def test_module_colon_class_names_any_term_and_refuses_non_terms():
    assert registry.get("keras_kd.losses.kd:KD") is losses.KD
    with pytest.raises(TypeError, match="not a keras_kd.losses.DistillationLoss"):
        registry.get("keras_kd.losses.kd:kd_loss")
    with pytest.raises(ValueError, match="Cannot import"):
        registry.get("no_such_module_kd:KD")


USER_TERM = '''
import keras
from keras import ops
import keras_kd


@keras.saving.register_keras_serializable(package="my_terms_kd")
@keras_kd.losses.register_term
class CosineLogitsKD(keras_kd.losses.DistillationLoss):
    def call(self, teacher, student, labels=None, training=None):
        t = ops.normalize(teacher["logits"], axis=-1)
        s = ops.normalize(student["logits"], axis=-1)
        return 1.0 - ops.sum(t * s, axis=-1)
'''


def test_a_users_term_is_usable_by_name_in_a_yaml_run_config(tmp_path):
    (tmp_path / "my_terms_kd.py").write_text(USER_TERM)
    path = tmp_path / "run.yaml"
    path.write_text(
        "imports: [my_terms_kd]\n"
        "teacher: digits_teacher\n"
        "student: digits_student\n"
        "dataset: {name: digits, batch_size: 64}\n"
        "terms: [{type: CosineLogitsKD, weight: 2.0}]\n"
        f"epochs: 1\noutput_dir: {tmp_path}/out\n")
    cfg = config.load(path)  # imports the module next to the config
    assert cfg["terms"][0]["type"] == "CosineLogitsKD"
    from keras_kd.tools.run import runner as run_config

    terms, _, _, _, _ = run_config.build_terms(cfg, teacher=None)
    assert type(terms[0]).__name__ == "CosineLogitsKD" and terms[0].weight == 2.0
    # Without the import the name is unknown, and the error says how to fix it.
    path.write_text(path.read_text().replace("imports: [my_terms_kd]\n", "")
                    .replace("CosineLogitsKD", "CosineLogitsKDX"))
    with pytest.raises(config.ConfigError, match=r"terms\[0\]\.type: Unknown term type 'CosineLogitsKDX'.*imports"):
        config.load(path)


def test_register_term_refuses_what_is_not_a_term():
    with pytest.raises(TypeError, match="DistillationLoss subclass"):
        losses.register_term(keras.layers.Dense)
    with pytest.raises(TypeError, match="DistillationLoss subclass"):
        losses.register_term(losses.kd_loss)


def test_every_term_of_keras_kd_is_registered():
    # Registration is explicit: a term class left undecorated would be
    # missing from run configs. Every public term class must be there.
    public = {n for n in losses.__all__
              if isinstance(getattr(losses, n), type)
              and issubclass(getattr(losses, n), losses.DistillationLoss)
              and getattr(losses, n) not in (losses.DistillationLoss, losses.LogitLossWrapper)}
    ours = {n for n in registry.names()
            if any(c.startswith('keras_kd.') for c in registry._CLASSES[n])}
    assert public == ours


def test_a_string_or_keras_loss_where_a_term_is_expected():
    with pytest.raises(TypeError, match="not a keras_kd.losses.DistillationLoss"):
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[keras.losses.KLDivergence()])
    with pytest.raises(TypeError, match="losses must be a DistillationLoss"):
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses="kd")
