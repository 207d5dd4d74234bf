"""GreedyDIB: gamma = 0 is greedy_ce exactly; the DIB term lowers the entropy it penalises; every regulariser runs."""

from __future__ import annotations

import pytest
import torch

from bench import info
from bench.errors import ConfigError
from bench.runner import execute, resolve_config

SMALL = {"arch": "cifar_resnet20", "epochs": 1, "batch_size": 64}
SIGNS = ["data.num_classes=4", "data.train_size=256", "data.test_size=128", "data.image_size=16"]


def train(tmp_path, method: str, *sets: str, **flags):
    """Run through the runner; return (result, trained network)."""
    cfg, m = resolve_config({**SMALL, "method": method, "out": str(tmp_path), **flags}, sets=[*SIGNS, *sets])
    captured = {}
    result, _ = execute(cfg, m, on_start=lambda run: captured.setdefault("run", run), force=True)
    return result, captured["run"].net, captured["run"].data


def train_net(tmp_path, method: str, *sets: str, **flags):
    result, net, _ = train(tmp_path, method, *sets, **flags)
    return result, net


def test_gamma_zero_reproduces_greedy_ce_exactly(tmp_path):
    ce, ce_net = train_net(tmp_path / "ce", "greedy_ce")
    dib, dib_net = train_net(tmp_path / "dib", "greedydib", "gamma=0")
    for (name, a), (_, b) in zip(ce_net.state_dict().items(), dib_net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    for key in ("test_top1", "module_top1", "final_train_loss", "peak_activation_bytes"):
        assert ce["metrics"][key] == dib["metrics"][key], key
    # and a non-zero gamma does change the training (the comparison above could fail)
    _, other = train_net(tmp_path / "dib1", "greedydib", "gamma=0.1")
    assert not torch.equal(next(ce_net.stages[0].parameters()), next(other.stages[0].parameters()))


def first_module_entropy(net, data) -> float:
    """S(T_1) in bits on the first 128 training images, the data the term was minimised on (eval mode)."""
    net.eval()
    with torch.no_grad():
        t = net.stages[0](data.normalize(data.train_images[:128]))
        return info.feature_entropy(t, 1.01, "median").item()


def test_dib_term_lowers_the_entropy_it_penalises(tmp_path):
    _, plain, data = train(tmp_path / "g0", "greedydib", "gamma=0", epochs=4)
    _, squeezed, _ = train(tmp_path / "g1", "greedydib", "gamma=1.0", epochs=4)
    s_plain, s_squeezed = first_module_entropy(plain, data), first_module_entropy(squeezed, data)
    assert s_squeezed < s_plain - 0.3, (s_squeezed, s_plain)


@pytest.mark.parametrize("regularizer", ["ixt", "markov"])
def test_mutual_information_regularisers_run_and_are_recorded(tmp_path, regularizer):
    result, _ = train_net(tmp_path, "greedydib", f"regularizer={regularizer}", "alpha=2", "gamma=[0.01,0.02,0.03]")
    assert result["status"] == "ok"
    hp = result["config"]["hparams"]
    assert hp["regularizer"] == regularizer and hp["alpha"] == 2.0 and hp["gamma"] == [0.01, 0.02, 0.03]


def test_simultaneous_schedule_and_fixed_width(tmp_path):
    result, _ = train_net(tmp_path, "greedydib", "width=5.0", schedule="simultaneous")
    assert result["status"] == "ok" and result["config"]["schedule"] == "simultaneous"


def test_dib_reference_width_is_accepted_and_changes_training(tmp_path):
    """``--set width=dib``: the DIB reference code's rule (bench.info.kernel_width) runs and is recorded."""
    result, net = train_net(tmp_path / "dib", "greedydib", "width=dib", "detach_width=true", "gamma=0.1")
    assert result["status"] == "ok"
    assert result["config"]["hparams"]["width"] == "dib" and result["config"]["hparams"]["detach_width"] is True
    _, median = train_net(tmp_path / "median", "greedydib", "detach_width=true", "gamma=0.1")
    assert not torch.equal(next(net.stages[0].parameters()), next(median.stages[0].parameters()))


@pytest.mark.parametrize(
    ("sets", "needle"),
    [(["gamma=[0.1,0.2]"], "gamma has 2 values"), (["regularizer=kl"], "regularizer"), (["gamma=-1"], "gamma"),
     (["alpha=0"], "alpha"), (["width=widest"], "width 'widest' is not one of median, knn, silverman, dib"),
     (["width=-2"], "positive")],
)
def test_bad_hyperparameters_are_config_errors(tmp_path, sets, needle):
    with pytest.raises(ConfigError, match=needle):
        train(tmp_path, "greedydib", *sets)
