"""Measurement: saved-activation bytes against a hand count, trainable state, FLOPs."""

from __future__ import annotations

import torch
from torch import nn

from bench.measure import Meter, SavedTensorCounter, saved_activation_bytes, trainable_state_bytes


def test_saved_activation_bytes_match_a_hand_count():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    lin = nn.Linear(4 * 8 * 8, 5)
    x = torch.randn(2, 3, 8, 8, requires_grad=False)
    params = list(conv.parameters()) + list(lin.parameters())

    def forward():
        h = torch.relu(conv(x))  # conv saves x (and its weight: a parameter); relu saves its output
        return lin(h.flatten(1))  # linear saves its input: a view of relu's output, the same storage

    expected = x.numel() * 4 + 2 * 4 * 8 * 8 * 4  # x, relu output; float32
    assert saved_activation_bytes(forward, exclude=params) == expected
    # without excluding parameters, the weights would be counted too
    assert saved_activation_bytes(forward) > expected


def test_counter_resets_between_steps_and_meter_keeps_the_peak():
    meter = Meter(torch.device("cpu"))
    a = torch.randn(100, requires_grad=True)
    with meter.activations():
        (a * a).sum()  # mul saves a twice: one storage
    first = meter.peak_activation_bytes
    assert first == 400
    with meter.activations():
        (a[:10] * a[:10]).sum()  # a view of the same storage still holds the whole storage alive
    assert meter.peak_activation_bytes == first
    b = torch.randn(1000, requires_grad=True)
    with meter.activations():
        (b * b).sum()
    assert meter.peak_activation_bytes == 4000


def test_trainable_state_counts_params_grads_and_momentum():
    lin = nn.Linear(10, 10)  # 110 parameters
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    assert trainable_state_bytes([lin], [opt]) == 110 * 4
    lin(torch.randn(3, 10)).sum().backward()
    opt.step()
    assert trainable_state_bytes([lin], [opt]) == 3 * 110 * 4
    lin.requires_grad_(False)
    assert trainable_state_bytes([lin], []) == 0


def test_flop_count_of_a_linear_layer():
    meter = Meter(torch.device("cpu"))
    lin = nn.Linear(16, 8, bias=False)
    x = torch.randn(4, 16)
    with meter.count_flops() as mode:
        lin(x).sum().backward()
    # forward 2*4*16*8; backward: grad of the weight only (x needs no grad) 2*4*16*8
    assert mode.get_total_flops() == 2 * (2 * 4 * 16 * 8)


def test_counter_ignores_tensors_saved_outside_its_context():
    c = SavedTensorCounter()
    a = torch.randn(10, requires_grad=True)
    (a * a).sum()
    with c.counting():
        pass
    assert c.bytes == 0
