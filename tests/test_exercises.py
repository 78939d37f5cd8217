"""course_lib.exercises: placeholders, right and wrong answers, predicates, and the stored solutions under test."""

import pytest
import torch

from course_lib import exercises
from course_lib.exercises import EXERCISES, Exercise, check, matches


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(EXERCISES, "99.1", Exercise(solution="x * 2", wrong="x + 2", hint="double it"))
    return "99.1"


def test_matches_numbers_tensors_predicates_and_the_rest():
    assert matches(0.1 + 0.2, 0.3) and not matches(0.31, 0.3)
    assert matches(torch.eye(2), torch.eye(2) * (1 + 1e-9)) and not matches(torch.eye(2), torch.ones(2, 2))
    assert not matches(torch.ones(3), torch.ones(1, 3))  # shapes must agree
    # a tensor on either side is compared as tensors: within tolerance, and shapes must agree
    assert matches(torch.tensor(1.0, dtype=torch.float64), 1.0 + 1e-9) and matches(1.0 + 1e-9, torch.tensor(1.0))
    assert not matches(torch.ones(1), 1.0) and not matches(torch.tensor(0.5), 0.6)
    assert matches(4, lambda a: a % 2 == 0) and not matches(3, lambda a: a % 2 == 0)
    assert matches({"a": (1, 2)}, {"a": (1, 2)}) and not matches("8", 8)
    assert not matches(True, 1) and matches(False, False)


def test_a_placeholder_is_not_answered_yet(toy, monkeypatch, capsys):
    monkeypatch.setattr(exercises, "SOLVE", False)
    assert check(toy, ..., 6) is False
    assert "not answered yet" in capsys.readouterr().out


def test_right_and_wrong_answers_print_the_expected_value(toy, monkeypatch, capsys):
    monkeypatch.setattr(exercises, "SOLVE", False)
    assert check(toy, 6, 6) is True
    assert "right: yours 6, expected 6" in capsys.readouterr().out
    assert check(toy, 5, 6) is False
    out = capsys.readouterr().out
    assert "not yet: yours 5, expected 6" in out and "hint: double it" in out


def test_under_test_the_stored_solution_answers_and_the_wrong_one_is_rejected(toy, monkeypatch, capsys):
    monkeypatch.setattr(exercises, "SOLVE", True)
    assert check(toy, ..., 6, {"x": 3}) is True
    out = capsys.readouterr().out
    assert "stored solution 6" in out and "rejects the plausible wrong answer x + 2: 5" in out
    with pytest.raises(AssertionError, match="fails its own check"):
        check(toy, ..., 7, {"x": 3})
    with pytest.raises(AssertionError, match="accepts the wrong answer"):
        check(toy, ..., lambda a: a > 0, {"x": 3})
    assert check(toy, 5, 6, {"x": 3}) is False  # a learner's own answer is only judged, never replaced


def test_every_exercise_has_a_solution_a_different_wrong_answer_and_a_hint():
    for key, exercise in EXERCISES.items():
        assert exercise.solution.strip() and exercise.hint.strip(), key
        assert exercise.wrong.strip() and exercise.wrong != exercise.solution, key


def test_tolerances_reach_every_comparison(monkeypatch, capsys):
    """An exercise's rel_tol and abs_tol decide both the learner's answer and the stored wrong answer."""
    monkeypatch.setattr(exercises, "SOLVE", False)
    monkeypatch.setitem(EXERCISES, "99.2", Exercise(solution="1.0", wrong="1.5", hint="h", rel_tol=0.1, abs_tol=0.0))
    assert check("99.2", 1.05, 1.0) and not check("99.2", 1.2, 1.0)
    monkeypatch.setitem(EXERCISES, "99.3", Exercise(solution="1.0", wrong="1.5", hint="h", rel_tol=0.0, abs_tol=0.3))
    assert check("99.3", 1.2, 1.0) and not check("99.3", 1.4, 1.0)
    assert check("99.3", torch.tensor([1.2]), torch.tensor([1.0]))
    monkeypatch.setattr(exercises, "SOLVE", True)
    monkeypatch.setitem(EXERCISES, "99.4", Exercise(solution="1.0", wrong="1.2", hint="h", rel_tol=0.0, abs_tol=0.3))
    with pytest.raises(AssertionError, match="accepts the wrong answer"):  # 1.2 is within abs_tol 0.3 of 1.0
        check("99.4", ..., 1.0)
    monkeypatch.setitem(EXERCISES, "99.5", Exercise(solution="1.0", wrong="1.2", hint="h", rel_tol=0.3, abs_tol=0.0))
    with pytest.raises(AssertionError, match="accepts the wrong answer"):  # and within rel_tol 0.3
        check("99.5", ..., 1.0)
    capsys.readouterr()


def test_matches_a_tensor_against_a_number_and_shows_large_tensors_by_shape():
    assert matches(torch.tensor(2.0), 2.0) and matches(2.0, torch.tensor(2.0)) and not matches(torch.tensor(2.0), 3)
    assert exercises._shown(torch.zeros(8)) == repr(torch.zeros(8)) and exercises._shown(torch.zeros(3, 3)) == (
        "a tensor of shape (3, 3)")


def test_show_solution_displays_the_stored_code(monkeypatch, toy):
    shown = []
    monkeypatch.setattr(exercises, "display", shown.append)
    exercises.show_solution(toy)
    assert shown[0].data == "Exercise 99.1, one solution:\n```python\nanswer = x * 2\n```"


def test_tensor_answers_use_the_exercise_tolerance_not_torchs_default():
    close = torch.tensor([1.0 + 5e-6])
    assert not matches(close, torch.tensor([1.0]), rel_tol=1e-6)  # torch.allclose's own rtol (1e-5) would accept it
    assert matches(close, torch.tensor([1.0]), rel_tol=1e-5)
