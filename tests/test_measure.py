"""course_lib.measure: FLOP counts of known layers, batch scaling, formatting; timing of repeats."""

import pytest
import torch
from torch import nn

from course_lib import measure
from course_lib.measure import (
    Timing,
    count_flops,
    flops_by_operator,
    format_flops,
    synchronize,
    time_repeats,
    timed,
)


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


def test_format_flops_picks_the_largest_prefix_that_fits():
    assert [format_flops(v) for v in (0, 999.4, 1000, 1234, 999_999, 1e6, 3.21e12, 5e15)] == [
        "0 FLOP", "999 FLOP", "1 kFLOP", "1.23 kFLOP", "1e+03 kFLOP", "1 MFLOP", "3.21 TFLOP", "5e+03 TFLOP"]


def test_flops_by_operator_names_each_operator_once():
    w = torch.ones(4, 4)
    parts = flops_by_operator(lambda x: (x @ w) @ w + nn.functional.linear(x, w, torch.zeros(4)), torch.ones(3, 4))
    assert parts == {"mm": 2 * 2 * 3 * 4 * 4, "addmm": 2 * 3 * 4 * 4}
    assert flops_by_operator(lambda x: x + 1, torch.ones(3)) == {}


def test_timed_waits_for_the_device_before_and_after(monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append(("cuda", device)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: events.append(("mps", None)))
    result, seconds = timed(lambda a, b=0: events.append("run") or a + b, 2, b=3, device="cuda:1")
    assert result == 5 and seconds >= 0
    assert events == [("cuda", torch.device("cuda:1")), "run", ("cuda", torch.device("cuda:1"))]
    events.clear()
    synchronize("mps")
    synchronize(torch.device("cpu"))
    assert events == [("mps", None)]
    events.clear()
    _, timing = time_repeats(lambda: None, repeats=2, device="mps")
    assert events == [("mps", None)] * 4 and len(timing.seconds) == 2


def test_time_repeats_times_each_run(monkeypatch):
    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(clock))
    result, timing = time_repeats(lambda x: x, 7, repeats=3)
    assert result == 7 and timing.seconds == (1.0, 3.0, 2.0) and timing.median == 2.0
    assert str(timing) == "2 s (median of 3, range 1-3)"


def test_format_flops_at_each_prefix_and_the_negative_message():
    assert [format_flops(v) for v in (1e12, 1e9, 1e6, 1e3)] == ["1 TFLOP", "1 GFLOP", "1 MFLOP", "1 kFLOP"]
    with pytest.raises(ValueError, match="a FLOP count cannot be negative, got -1"):
        format_flops(-1)


def test_flops_by_operator_passes_keyword_arguments():
    w = torch.ones(4, 4)
    parts = flops_by_operator(lambda x, repeat=1: [x @ w for _ in range(repeat)], torch.ones(2, 4), repeat=3)
    assert parts == {"mm": 3 * 2 * 2 * 4 * 4}


def test_count_flops_passes_keyword_arguments_and_time_repeats_three_times():
    w = torch.ones(4, 4)
    twice = count_flops(lambda x, repeat=1: [x @ w for _ in range(repeat)], torch.ones(2, 4), repeat=2)
    assert twice == 2 * (2 * 2 * 4 * 4)
    assert len(time_repeats(lambda: None)[1].seconds) == 3


def test_time_repeats_returns_the_last_result_and_passes_keyword_arguments():
    calls = []

    def record(x, scale=1):
        calls.append(x * scale)
        return len(calls)

    result, timing = time_repeats(record, 2, repeats=3, scale=10)
    assert result == 3 and calls == [20, 20, 20] and len(timing.seconds) == 3
    assert time_repeats(record, 1, repeats=1)[0] == 4  # one repeat is allowed
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        time_repeats(record, 1, repeats=0)


def test_flops_by_operator_names_operators_without_their_overload():
    assert flops_by_operator(nn.Linear(4, 3), torch.zeros(2, 4)) == {"addmm": 2 * 2 * 4 * 3}
