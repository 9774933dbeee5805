import threading
import time

import pytest

from supersmall import grading
from supersmall.grading import extract_answer, extract_tagged, grade_batch, is_equivalent


@pytest.mark.parametrize("text,expected", [
    ("so \\boxed{17}.", "17"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("first \\boxed{1}, finally \\boxed{2}", "2"),
    ("\\boxed 5.", "5"),
    ("\\fbox{x+1}", "x+1"),
    ("\\boxed{(1,2)} then \\fbox{3}", "3"),
    ("\\boxed{{a}{b}}", "{a}{b}"),
    ("no box", None),
    ("\\boxed{1", None),
    ("\\boxed{}", None),
    ("\\boxedx{3}", None),
    ("", None),
    (None, None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_tagged():
    assert extract_tagged("<think>x</think><answer> 42 </answer>") == "42"
    assert extract_tagged("<answer>\\boxed{7}</answer>") == "7"
    assert extract_tagged("<answer>unclosed") is None and extract_tagged("") is None


EQUIVALENT = [("\\frac{1}{2}", "0.5"), ("0.5", "1/2"), ("\\sqrt{8}", "2\\sqrt{2}"), ("(1, 2)", "(1,2)"),
              ("\\{1,2\\}", "\\{2,1\\}"), ("[0, 1)", "[0,1)"), ("50\\%", "0.5"), ("90^\\circ", "90"),
              ("\\text{(B)}", "B"), ("x = 3", "3"), ("17", "17.0"), ("-12", "-12"), ("\\dfrac{3}{4}", "0.75")]
NOT_EQUIVALENT = [("3", "4"), ("\\frac{1}{3}", "0.33"), ("(1, 2)", "(2, 1)"), ("[0, 1)", "[0, 1]"),
                  ("\\sqrt{2}", "2"), ("\\text{(A)}", "B"), ("12", "-12")]


@pytest.mark.parametrize("pred,gold", EQUIVALENT)
def test_equivalent(pred, gold):
    assert is_equivalent(pred, gold, timeout=5.0)


@pytest.mark.parametrize("pred,gold", NOT_EQUIVALENT)
def test_not_equivalent(pred, gold):
    assert not is_equivalent(pred, gold, timeout=5.0)


HOSTILE = ["9^{9^{9^{9^{9}}}}", "99999999!", "(10^{10^{10}})!", "1" * 1_000_000, "{" * 500 + "1" + "}" * 500,
           "(" * 400 + "1" + ")" * 400, "\\frac{" * 300 + "1" + "}{2}" * 300,
           "__import__('os').system('touch /tmp/supersmall_pwned')", "\\boxed{" * 500]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["main", "thread"])
def test_hostile_inputs_return_within_the_timeout_and_execute_nothing(where, tmp_path):
    timeout = 1.0
    is_equivalent("1", "1.0", timeout=timeout)  # warm the worker (start-up is not part of a call's budget)
    results = {}

    def run():
        for text in HOSTILE:
            t0 = time.time()
            results[text[:20]] = (is_equivalent(text, "1", timeout=timeout), time.time() - t0)
            t0 = time.time()
            extract_answer("\\boxed{" + text + "}")  # linear scan, even on 1 MB
            assert time.time() - t0 < 0.5

    if where == "main":
        run()
    else:
        th = threading.Thread(target=run)
        th.start()
        th.join(120)
        assert not th.is_alive()
    for key, (verdict, seconds) in results.items():
        assert verdict is False, key
        # the timeout, plus restarting a killed worker process (imports sympy) on a loaded 2-core machine
        assert seconds < timeout + 15.0, (key, seconds)
    import os

    assert not os.path.exists("/tmp/supersmall_pwned")


def test_long_answers_are_refused_and_counted():
    grading.reset_grader_stats()
    assert not is_equivalent("1" * 5000, "1")
    assert grading.grader_stats()["too_long"] == 1


def test_fast_path_for_integers():
    grading.reset_grader_stats()
    assert is_equivalent("35", "35") and not is_equivalent("35", "36") and is_equivalent("+7", "7")
    assert grading.grader_stats()["fast_path"] == 3


def test_grade_batch_matches_single_calls():
    preds = ["\\frac{1}{2}", "3", None, "0.75", "x"]
    golds = ["0.5", "4", "1", "\\frac{3}{4}", "x"]
    # by hand: 1/2 = 0.5; 3 != 4; no extracted answer is wrong; 0.75 = 3/4; identical strings match
    expected = [True, False, False, True, True]
    assert grade_batch(preds, golds, timeout=5.0) == expected
    assert [is_equivalent(p, g, 5.0) for p, g in zip(preds, golds)] == expected
    assert grade_batch([], []) == []
    with pytest.raises(ValueError, match="preds has 1 items but golds has 2"):
        grade_batch(["1"], ["1", "2"])
