"""course_lib.measure: FLOP counts of known layers, batch scaling, formatting; timing of repeats."""

import pytest
import torch
from torch import nn

from course_lib.measure import Timing, count_flops, flops_by_operator, format_flops, time_repeats


def test_linear_counts_two_flops_per_multiply_add():
    layer = nn.Linear(16, 128)
    assert count_flops(layer, torch.zeros(1, 16)) == 2 * 16 * 128


def test_conv_scales_with_spatial_size_and_batch():
    conv = nn.Conv2d(1, 32, 3, padding=1)
    one = count_flops(conv, torch.zeros(1, 1, 28, 28))
    assert one == 2 * 1 * 32 * 9 * 28 * 28
    assert count_flops(conv, torch.zeros(4, 1, 28, 28)) == 4 * one
    assert count_flops(conv, torch.zeros(1, 1, 4, 4)) * 49 == one


def test_functions_and_kwargs_are_counted_without_autograd():
    w = torch.ones(8, 8, requires_grad=True)

    def f(x, scale=1.0):
        out = (x @ w) * scale
        assert not out.requires_grad
        return out

    assert count_flops(f, torch.ones(2, 8), scale=2.0) == 2 * 2 * 8 * 8


def test_flops_by_operator_sums_to_total():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 28 * 28, 10))
    x = torch.zeros(2, 1, 28, 28)
    parts = flops_by_operator(model, x)
    assert set(parts) == {"convolution", "addmm"}
    assert sum(parts.values()) == count_flops(model, x)


def test_format_flops():
    assert format_flops(15_353_856) == "15.4 MFLOP"
    assert format_flops(2.5e9) == "2.5 GFLOP"
    assert format_flops(999) == "999 FLOP"
    with pytest.raises(ValueError):
        format_flops(-1)


def test_time_repeats_reports_median_and_range_of_every_run():
    calls = []
    result, timing = time_repeats(lambda x: calls.append(x) or x * 2, 21, repeats=5)
    assert result == 42 and calls == [21] * 5 and len(timing.seconds) == 5
    assert min(timing.seconds) <= timing.median <= max(timing.seconds)
    assert Timing((3.0, 1.0, 2.0)).median == 2.0 and "range 1-3" in str(Timing((3.0, 1.0, 2.0)))
    with pytest.raises(ValueError, match="repeats"):
        time_repeats(print, repeats=0)
