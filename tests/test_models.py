"""Model builders: Table 1 parameter counts, names, shapes, serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.helpers import (
    run_model_saving_test,
    run_reversible_equivalence_test,
    smallest_of_each_family,
)
from zoo.regularizers import StackedKernelRegularizer

# Exact counts of this implementation: (all weights, trainable weights).
# The difference is the batch-norm moving statistics.
def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_every_architecture_is_listed():
    assert zoo.list_models() == sorted(zoo.registry._MODELS)
    # The papers' models (Chang et al. 2018, Table 1; Ruthotto & Haber 2020).
    assert {"hamiltonian-74", "hamiltonian-218", "hamiltonian-1202", "midpoint-26", "midpoint-62",
            "leapfrog-26", "leapfrog-62", "resnet-32", "resnet-110", "revnet-38", "revnet-110",
            "parabolic", "hyperbolic-hamiltonian", "second-order"} <= set(zoo.list_models())
    assert "hamiltonian-74-stl10" in zoo.list_models(with_datasets=True)
    assert zoo.list_models("hamiltonian-*") == [
        "hamiltonian-1202", "hamiltonian-218", "hamiltonian-74"]


@pytest.mark.parametrize("name", zoo.list_models())
def test_parameter_counts_against_the_papers(name):
    entry = zoo.registry.get_entry(name)
    model = zoo.build(name)
    total, trainable = entry.parameters
    assert model.count_params() == total
    assert _trainable(model) == trainable
    paper = entry.paper_params
    # Table 1 gives two decimals in millions (one for ResNet-110: 1.7M).
    digits = 1 if name == "resnet-110" else 2
    matches = round(trainable / 1e6, digits) == round(paper / 1e6, digits)
    # Where the authors' layout gives another count, the registration says so.
    assert matches == (not entry.differs_from_paper), (name, trainable, paper)
    if entry.differs_from_paper:
        assert abs(trainable - paper) / paper < 0.08


@pytest.mark.parametrize(
    "name,classes,size",
    [("hamiltonian-74-cifar10", 10, 32), ("hamiltonian-74-cifar100", 100, 32),
     ("hamiltonian-74-stl10", 10, 96), ("leapfrog-26-stl10", 10, 96),
     ("revnet-38-stl10", 10, 96), ("resnet-32-cifar100", 100, 32)],
)
def test_dataset_suffix_sets_classes_and_input_size(name, classes, size):
    model = zoo.build(name)
    assert model.input_shape == (None, size, size, 3)
    out = model(np.zeros((2, size, size, 3), "uint8"))
    assert out.shape == (2, classes)
    np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)


def test_backbone_outputs_and_pooling():
    features = zoo.build("hamiltonian-74", include_top=False)
    assert features.output_shape == (None, 8, 8, 112)
    pooled = zoo.build("hamiltonian-74", include_top=False, pooling="avg")
    assert pooled.output_shape == (None, 112)
    maxed = zoo.build("revnet-38-stl10", include_top=False, pooling="max")
    assert maxed.output_shape == (None, 112)
    logits = zoo.build("midpoint-26", classifier_activation=None, classes=7)
    out = logits(np.full((1, 32, 32, 3), 128.0, "float32"))
    assert out.shape == (1, 7)


def test_builders_follow_keras_applications_signature():
    model = zoo.models.Hamiltonian74(
        include_top=True, weights=None, input_shape=(40, 40, 3), pooling=None,
        classes=5, classifier_activation="softmax")
    assert model.output_shape == (None, 5)
    assert model.name == "hamiltonian_74"


@pytest.mark.parametrize(
    "kwargs,message",
    [({"input_shape": (32, 32)}, "height, width, channels"),
     ({"input_shape": (4, 4, 3)}, "at least 8"),
     ({"input_shape": "32x32"}, "height, width, channels"),
     ({"classes": 0}, "classes"),
     ({"pooling": "sum"}, "pooling"),
     ({"weights": "imagenet"}, "weights")],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("hamiltonian-74", **kwargs)


@pytest.mark.parametrize("name,suggestion", [
    ("hamiltonian-75", "hamiltonian-74"), ("resnet32", "resnet-32"),
    ("midpoint-26-cifar11", "midpoint-26-cifar10")])
def test_unknown_names_suggest_close_matches(name, suggestion):
    with pytest.raises(ValueError, match=f"Unknown model.*{suggestion}"):
        zoo.build(name)


def test_resnet_cannot_be_reversible():
    with pytest.raises(ValueError, match="not invertible"):
        zoo.build("resnet-32", reversible=True)


@pytest.mark.parametrize("name", smallest_of_each_family())
def test_keras_file_round_trip_gives_identical_outputs(name, tmp_path):
    extra = {"control_points": 2} if zoo.registry.get_entry(name).family == "pde" else {}
    run_model_saving_test(name, tmp_path, weight_decay=2e-4, smoothness_decay=2e-4, **extra)


def test_uint8_and_float_inputs_agree():
    model = zoo.build("hamiltonian-74")
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(model(x), model(x.astype("float32")), atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x), atol=1e-5)


@pytest.mark.parametrize("name", [n for n in smallest_of_each_family()
                                  if zoo.registry.get_entry(n).invertible])
def test_reversible_flag_does_not_change_the_function(name):
    run_reversible_equivalence_test(name)


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_architecture_has_its_facts_in_its_registration(name):
    entry = zoo.registry.get_entry(name)
    assert entry.card_description() and entry.family_facts.citations
    for key in entry.family_facts.citations:
        assert key in zoo.references.CITATIONS
    for dataset, (top1, source) in entry.paper_top1.items():
        assert dataset in zoo.data.DATASETS and 50 < top1 < 100
        assert entry.paper_result(dataset)["source"] == zoo.references.PAPER_SOURCES[source]
    # Invertibility is the blocks' own: the engine accepts them exactly when
    # the registry says it applies.
    assert entry.invertible == issubclass(entry.block, zoo.layers.InvertibleBlock)


def test_builders_take_a_dtype_and_leave_the_global_policy_alone():
    before = keras.config.dtype_policy().name
    model = zoo.build("hamiltonian-74", dtype="mixed_bfloat16")
    assert keras.config.dtype_policy().name == before == "float32"
    assert model.get_layer("unit1").dtype_policy.name == "mixed_bfloat16"
    assert model.layers[-1].dtype_policy.variable_dtype == "float32"
    assert all(v.dtype == "float32" for v in model.trainable_weights)
    assert zoo.build("hamiltonian-74").get_layer("unit1").dtype_policy.name == "float32"


def test_smoothness_decay_is_equation_22():
    rng = np.random.default_rng(3)
    k = rng.standard_normal((5, 3, 3, 2, 2))
    h, alpha, lam = 0.1, 2e-4, 3e-4
    reg = StackedKernelRegularizer(weight_decay=lam, smoothness_decay=alpha, h=h)
    expected = lam / 2 * np.sum(k**2) + alpha * h * sum(
        np.sum(((k[j] - k[j + 1]) / h) ** 2) for j in range(4))
    np.testing.assert_allclose(float(reg(tf.constant(k))), expected, rtol=1e-12)
    # A constant-in-time kernel has no smoothness penalty.
    const = np.repeat(k[:1], 5, axis=0)
    np.testing.assert_allclose(
        float(StackedKernelRegularizer(0.0, alpha, h)(tf.constant(const))), 0.0, atol=1e-15)


def test_builders_attach_regularisers():
    none = zoo.build("hamiltonian-74")
    assert len(none.losses) == 0
    both = zoo.build("hamiltonian-74", weight_decay=2e-4, smoothness_decay=2e-4)
    # stem conv, dense, and the two stacked kernels of each of the three units.
    assert len(both.losses) == 2 + 3 * 2


def test_one_image_without_a_batch_axis_is_refused_with_the_expected_shape():
    model = zoo.build("hamiltonian-74-cifar10")
    expected = r"expected shape=\(None, 32, 32, 3\), found shape=\(32, 32, 3\)"
    with pytest.raises(ValueError, match=expected):
        model.predict(np.zeros((32, 32, 3), np.uint8), verbose=0)
    assert model.predict(np.zeros((1, 32, 32, 3), np.uint8), verbose=0).shape == (1, 10)


def test_an_unknown_classifier_activation_is_refused():
    with pytest.raises(ValueError, match="classifier_activation must be None"):
        zoo.build("resnet-32-cifar10", classifier_activation="softmaxx")
    logits = zoo.build("resnet-32-cifar10", classifier_activation=None)
    assert logits.layers[-1].activation.__name__ == "linear"


def test_a_tag_after_a_dot_names_the_dataset():
    entry, dataset = zoo.registry.split_name("hamiltonian-74.cifar100")
    assert (entry.name, dataset) == ("hamiltonian-74", "cifar100")
    assert zoo.registry.split_name("resnet-32.cifar10_long")[1] == "cifar10"
    assert zoo.build("resnet-32.stl10").input_shape == (None, 96, 96, 3)
    for bad in ("hamiltonian-74.imagenet", "hamiltonian-75.cifar10", "hamiltonian-74.cifar100x"):
        with pytest.raises(ValueError, match="Unknown model"):
            zoo.registry.split_name(bad)


def test_every_architecture_file_registers_its_models_and_is_imported():
    # A new architecture is one file in zoo/models/: the package imports it.
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(zoo.models.__path__)}
    registering = {zoo.registry.get_entry(name).builder.__module__.rpartition(".")[2]
                   for name in zoo.list_models()}
    assert registering == modules - {"common", "backbone"}
    for name in zoo.list_models():
        builder = zoo.registry.get_entry(name).builder
        assert getattr(zoo.models, builder.__name__) is builder
