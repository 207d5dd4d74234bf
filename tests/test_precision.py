"""Mixed precision and channels-last on CPU (bench.precision, the engine, evaluation), and the sampling precision
of a test-set top-1 (bench.evaluate.top1_standard_error)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench import precision
from bench.config import RunConfig, validate
from bench.engine import LocalStep, train_local
from bench.errors import ConfigError
from bench.evaluate import evaluate, precision_note, top1_standard_error
from bench.methods.greedydib import GreedyDIB, dib_regularizer
from bench.runner import execute, resolve_config
from tests.tiny import tiny_run

CPU = torch.device("cpu")


def linear_head(k, shape):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], 4))


# ------------------------------------------------------------------------------------------------ resolution
def test_cpuinfo_flags_of_x86_and_arm(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 sve\n")
    assert precision.cpuinfo_flags(x86) == {"fpu", "sse", "avx512f", "avx512_bf16"}  # the first CPU's
    assert "bf16" in precision.cpuinfo_flags(arm)
    assert precision.cpuinfo_flags(tmp_path / "absent") == set()


def test_the_cpu_model_is_recorded_from_cpuinfo(tmp_path):
    from bench.runner import cpu_name

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6430\n")
    assert cpu_name(info) == "Intel(R) Xeon(R) Gold 6430"
    assert cpu_name(tmp_path / "absent")  # falls back to platform.processor() or "cpu", never empty


def test_this_cpu_is_detected_as_its_cpuinfo_says():
    flags = precision.cpuinfo_flags()
    if flags & set(precision.CPU_BF16_FLAGS):
        assert precision.cpu_has_native_bf16()
    assert precision.bf16_native(CPU) == precision.cpu_has_native_bf16()


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_hardware_and_explicit_values_win(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_amp("auto", CPU) is native
    assert precision.resolve_amp(True, CPU) is True and precision.resolve_amp(False, CPU) is False
    assert precision.resolve_channels_last("auto", precision.resolve_amp("auto", CPU)) is native
    assert precision.resolve_channels_last(False, True) is False and precision.resolve_channels_last(True, False)
    cfg, _ = resolve_config({"method": "sgd", "device": "cpu"})
    assert (cfg.amp, cfg.channels_last) == (native, native)  # the config records what runs
    cfg, _ = resolve_config({"method": "sgd", "device": "cpu"}, sets=["amp=true", "channels_last=false"])
    assert (cfg.amp, cfg.channels_last) == (True, False)


def test_amp_and_channels_last_settings_are_tri_state():
    for text, value in (("auto", "auto"), ("AUTO", "auto"), ("true", True), ("off", False)):
        cfg, _ = resolve_config({"method": "sgd"}, sets=[f"amp={text}"])
        assert cfg.amp == precision.resolve_amp(value, CPU)
    with pytest.raises(ConfigError, match="amp: expected true, false or auto"):
        resolve_config({"method": "sgd"}, sets=["amp=maybe"])
    with pytest.raises(ConfigError, match="channels_last"):
        validate(RunConfig(channels_last="sometimes"))
    with pytest.raises(ConfigError, match="val_split"):
        resolve_config({"method": "sgd"}, sets=["val_split=1.0"])


# ---------------------------------------------------------------------------------------------------- engine
def _spy_loss(seen: dict):
    def loss(step: LocalStep):
        seen.setdefault("features", step.features.dtype)
        seen.setdefault("x_channels_last", step.x.is_contiguous(memory_format=torch.channels_last))
        linear = next(m for m in step.head.modules() if isinstance(m, nn.Linear))
        seen.setdefault("head_dtype", linear.weight.dtype)
        logits = step.head(step.features)
        return F.cross_entropy(logits, step.y), logits

    return loss


@pytest.mark.parametrize("on", [True, False])
def test_bf16_autocast_and_channels_last_apply_inside_the_step(on):
    run = tiny_run("simultaneous", epochs=1, amp=on, channels_last=on, max_steps=1)
    seen: dict = {}
    train_local(run, make_head=linear_head, local_loss=_spy_loss(seen))
    assert seen["features"] == (torch.bfloat16 if on else torch.float32)  # the module's conv ran in bf16
    assert seen["head_dtype"] == torch.float32  # parameters stay float32
    assert seen["x_channels_last"] is on
    weight = run.net.stages[0][0].weight
    assert weight.dtype == torch.float32
    assert weight.is_contiguous(memory_format=torch.channels_last) is on
    assert weight.is_contiguous() is not on


def test_a_tiny_run_learns_with_bf16_and_channels_last():
    for schedule in ("end_to_end", "sequential"):
        run = tiny_run(schedule, epochs=4, amp=True, channels_last=True)
        outcome = train_local(run, make_head=linear_head)
        top1 = evaluate(run.net, run.data, aux_heads=outcome.aux_heads, amp=True)["test_top1"]
        assert top1 > 60.0, (schedule, top1)  # chance is 25%
        assert math.isfinite(outcome.final_train_loss)


def test_evaluation_runs_under_the_same_autocast():
    run = tiny_run("end_to_end", epochs=1, amp=True, channels_last=True, max_steps=1)
    train_local(run, make_head=linear_head)
    dtypes = []
    run.net.stages[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    evaluate(run.net, run.data, amp=True)
    evaluate(run.net, run.data, amp=False)
    n = len(dtypes) // 2
    assert set(dtypes[:n]) == {torch.bfloat16} and set(dtypes[n:]) == {torch.float32}


def test_dib_regularizer_is_full_precision_under_autocast():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(32, 3, 8, 8)
    hp = {**GreedyDIB.hparams, "regularizer": "ixt"}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t = conv(x)
        assert t.dtype == torch.bfloat16
        r = dib_regularizer(LocalStep(0, 3, x, None, x, t, None, False, None), hp)
    expected = dib_regularizer(LocalStep(0, 3, x, None, x, t.detach().float(), None, False, None), hp)
    assert r.dtype == torch.float32 and r.item() == pytest.approx(expected.item(), abs=1e-6)


def test_a_run_records_the_precision_it_ran_with(tmp_path):
    sets = ["data.num_classes=4", "data.train_size=128", "data.test_size=16", "data.image_size=16", "max_steps=1",
            "amp=true", "channels_last=true"]
    cfg, m = resolve_config({"method": "sgd", "epochs": 1, "batch_size": 32, "out": str(tmp_path)}, sets=sets)
    result, _ = execute(cfg, m)
    assert result["status"] == "ok"
    assert result["config"]["amp"] is True and result["config"]["channels_last"] is True
    assert result["env"]["bf16_native"] == precision.bf16_native(CPU)
    from bench.runner import cpu_id, cpu_name

    assert result["env"]["device_name"] == cpu_name()
    assert result["env"]["cpu_id"] == cpu_id()


# ------------------------------------------------------------------------------------ sampling precision of top-1
def test_top1_standard_error_is_the_binomial_one():
    assert top1_standard_error(70.0, 1000) == pytest.approx(100 * math.sqrt(0.7 * 0.3 / 1000))
    assert top1_standard_error(70.0, 1000) == pytest.approx(1.449, abs=1e-3)  # the CIFAR subset's 1,000 images
    assert top1_standard_error(97.0, 12630) == pytest.approx(0.1518, abs=1e-4)  # the complete GTSRB test set
    assert top1_standard_error(50.0, 400) == pytest.approx(2.5)
    assert top1_standard_error(50.0, 1600) == pytest.approx(top1_standard_error(50.0, 400) / 2)
    assert top1_standard_error(0.0, 10) == 0.0 == top1_standard_error(100.0, 10)
    for top1, n in ((101.0, 10), (-1.0, 10), (50.0, 0), (50.0, 2.5), (50.0, True)):
        with pytest.raises(ValueError):
            top1_standard_error(top1, n)


def test_precision_note_reads_as_a_sentence():
    assert precision_note(70.0, 1000) == (
        "A single run's top-1 has a sampling standard error of about 1.4 points (1,000 test images, at 70.0 %)."
    )
    assert "about 0.15 points (12,630 test images" in precision_note(97.0, 12630)


def test_the_cpu_id_records_family_model_stepping_and_the_kernel_flags(tmp_path):
    from bench.runner import cpu_id

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
                    "model name\t: Intel(R) Xeon(R) Processor\nstepping\t: 8\n"
                    "flags\t\t: fpu sse avx2 fma avx512f avx512_bf16 amx_tile amx_bf16\n\n"
                    "processor\t: 1\ncpu family\t: 6\nmodel\t\t: 106\nflags\t\t: fpu avx2\n")
    # the first processor only; of its flags, those that choose the float and bf16 kernels, in a fixed order
    assert cpu_id(info) == "family 6 model 143 stepping 8; avx2 fma avx512f avx512_bf16 amx_bf16"
    info.write_text("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 106\nstepping\t: 6\nflags\t\t: fpu avx2 fma\n")
    assert cpu_id(info) == "family 6 model 106 stepping 6; avx2 fma"
    assert cpu_id(tmp_path / "absent") is None
