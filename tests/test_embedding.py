"""The public Cython API (archfit/kernels.pxd) from outside: a third-party package
built against the installed archfit trains with archfit.fit's bits, and every
declaration in the shipped .pxd matches the compiled definition."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import archfit as af
from archfit import kernels
from archfit.datasets import load_digits

EXAMPLE = Path(__file__).parent.parent / "examples" / "embedding"
PXD = Path(kernels.get_include()) / "archfit" / "kernels.pxd"


def _build(args, cwd, timeout=600):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """examples/embedding, built against the installed archfit in a temporary folder."""
    if not EXAMPLE.exists():
        pytest.skip("the embedding example needs the source tree")
    site = tmp_path_factory.mktemp("embedding_site")
    _build([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
            "--no-deps", "--no-cache-dir", "--target", str(site), str(EXAMPLE)],
           cwd=tmp_path_factory.mktemp("embedding_build"))
    sys.path.insert(0, str(site))
    try:
        yield importlib.import_module("archfit_embedding_example")
    finally:
        sys.path.remove(str(site))


def test_third_party_training_gives_archfit_fits_bits(example):
    X, y = load_digits()
    X = X / 16.0
    sizes = (64, 32, 10)
    model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"),
                     dtype="float64")
    hp = af.Hyperparameters(learning_rate=1e-2, batch_size=32, epochs=4, seed=3)
    theta = model.init(hp.seed)
    fitted = af.fit(model, X, y, hp, init=theta)

    losses = example.fit_adam(sizes, theta, X, y, epochs=hp.epochs,
                              learning_rate=hp.learning_rate, batch_size=hp.batch_size,
                              seed=hp.seed)
    assert np.array_equal(theta, fitted.parameters)
    assert losses.tolist() == [r["train_loss"] for r in fitted.history]
    assert losses[-1] < 0.5 * losses[0]                      # it learned
    assert np.array_equal(example.predict_proba(sizes, theta, X[:300]),
                          fitted.predict_proba(X[:300]))
    # a fit's recorded validation loss, bit for bit, from evaluate() on one thread
    # (archfit's fit ran it on its own thread budget)
    validated = af.fit(model, X[:1400], y[:1400], hp, validation=(X[1400:], y[1400:]))
    assert example.validation_loss(sizes, validated.parameters, X[1400:], y[1400:]) == \
        validated.history[-1]["validation_loss"]


def test_third_party_training_of_a_residual_network_gives_archfit_fits_bits(example):
    X, y = load_digits()
    X = X / 16.0
    arch = af.Architecture(64, [af.Dense(32, "relu"),
                                af.Residual([af.LayerNorm(), af.Dense(32, "relu")]),
                                af.Dense(10)], "softmax")
    model = af.Model(arch, dtype="float64")
    hp = af.Hyperparameters(learning_rate=3e-3, batch_size=32, epochs=3, seed=4)
    theta = model.init(hp.seed)
    fitted = af.fit(model, X, y, hp, init=theta)
    losses = example.fit_adam_resnet(64, 32, 10, theta, X, y, epochs=hp.epochs,
                                     learning_rate=hp.learning_rate,
                                     batch_size=hp.batch_size, seed=hp.seed)
    assert np.array_equal(theta, fitted.parameters)
    assert losses.tolist() == [r["train_loss"] for r in fitted.history]
    assert example.COMPILED_API_VERSION == kernels.API_VERSION == 5


def test_the_accessors_read_the_network(example):
    arch = af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax")
    assert example.describe((64, 32, 10)) == (arch.n_parameters, 64, 10, 1)


def test_third_party_wrapper_checks_its_inputs(example):
    theta = np.zeros(64 * 32 + 32 + 32 * 10 + 10)
    with pytest.raises(ValueError, match="do not fit"):
        example.fit_adam((64, 32, 10), theta, np.zeros((5, 63)), np.zeros(5, int), epochs=1,
                         learning_rate=0.1, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="do not describe"):
        example.predict_proba((64, 0, 10), theta, np.zeros((1, 64)))


def _public_functions():
    """Names of the functions kernels.pxd declares (top-level `cdef ... name(`)."""
    text = PXD.read_text()
    names = re.findall(r"^cdef (?!struct|enum|extern|cpdef)[\w *]+?(\w+)\(", text, re.M)
    assert len(names) == len(set(names)) >= 9 and {"train_epoch", "isa"} <= set(names), names
    return names


def test_every_declaration_in_the_shipped_pxd_matches_its_definition(tmp_path):
    # A module that takes the address of every public function through the
    # .pxd: importing it makes Cython compare each declaration's signature
    # with the one the compiled archfit.kernels exports, and fail on any
    # difference (the drift that once let run_epoch's .pxd lose an argument).
    names = _public_functions()
    lines = ["from archfit.kernels cimport " + ", ".join(names),
             f"cdef void* addresses[{len(names)}]"]
    lines += [f"addresses[{i}] = <void*> {name}" for i, name in enumerate(names)]
    lines += ["def resolved():", f"    return sum(addresses[i] != NULL for i in range({len(names)}))"]
    (tmp_path / "drift_check.pyx").write_text("\n".join(lines) + "\n")
    (tmp_path / "setup.py").write_text(
        "from Cython.Build import cythonize\nfrom setuptools import setup\n"
        "from archfit.kernels import get_include\n"
        "setup(ext_modules=cythonize('drift_check.pyx', include_path=[get_include()], "
        "compiler_directives={'language_level': 3}))\n")
    _build([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import drift_check; print(drift_check.resolved())"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert int(probe.stdout) == len(names)


def test_the_embedding_guide_states_the_pxd_signatures():
    # every function's signature in docs/embedding.md's table is the .pxd's,
    # and every code the .pxd declares is in the guide's codes table
    guide = (Path(__file__).parent.parent / "docs" / "embedding.md").read_text()
    text = PXD.read_text()
    declared = {}
    for match in re.finditer(r"^cdef (?!struct|enum|extern|cpdef)([^\n(]+?)(\w+)\(([^)]*)\)",
                             text, re.M):
        params = " ".join(match.group(3).split())
        declared[match.group(2)] = f"{' '.join(match.group(1).split())} {match.group(2)}({params})"
    documented = dict(re.findall(r"^\| `([^`]*?(\w+)\([^`]*\))` \|", guide, re.M))
    documented = {name: signature for signature, name in documented.items()}
    assert set(documented) == set(declared), set(documented) ^ set(declared)
    for name, signature in declared.items():
        assert documented[name] == signature, (name, documented[name], signature)
    for enum in re.findall(r"^c(?:p)?def enum (\w+):\n((?:    .*\n)+)", text, re.M):
        codes = re.findall(r"^    (\w+) =", enum[1], re.M)
        row = next(line for line in guide.splitlines() if line.startswith(f"| `{enum[0]}` |"))
        missing = [c for c in codes if f"`{c}`" not in row]
        assert not missing, (enum[0], missing)


def test_codes_are_declared_once_and_named_for_python():
    # The Python layer's vocabularies are the kernels' (no copies of values)
    assert af.architecture.ACTIVATIONS == tuple(kernels.ACTIVATIONS)
    assert af.architecture.OUTPUTS == tuple(kernels.HEADS)
    assert af.hyperparameters.OPTIMIZERS[:-1] == tuple(kernels.OPTIMIZERS)
    assert af.architecture.MAX_LAYERS == kernels.MAX_LAYERS == 64
    assert set(kernels.KINDS) == {"dense", "layer_norm", "add", "periodic", "embedding", "one_hot",
                                 "piecewise_linear", "replicate", "member_dense",
                                 "adapted_dense"}
    assert {cls.kind for cls in af.layers.LAYERS} - {"residual"} <= set(kernels.KINDS)
    assert sorted(kernels.ACTIVATIONS.values()) == list(range(len(kernels.ACTIVATIONS)))
    assert kernels.Status.OK == 0 and kernels.Status.NONFINITE_LOSS == 1
    assert kernels.ISA in kernels.isa_paths()
