"""The first line of a failure says what is wrong, in a screenful: diffs of dicts and long lists, labelled windows,
types checked as the contracts promise, the -inf contract of masks, capped prints, and a hint when pytest is
pointed at an exercise instead of its tests."""

import torch

from grader.engine import plugin
from grader.engine.compare import EXACT, TOLERANCES, mismatch, value_mismatch
import plants
from learners import pytest_command, tree


def test_a_list_diff_labels_its_windows_with_their_start():
    expected = list(range(100, 120))
    got = expected[:6] + [7] + expected[7:]
    report = value_mismatch("ids", got, expected)
    assert report.splitlines() == ["ids: lists differ first at index 6 (lengths 20 and 20; 1 of 20 positions differ)",
                                   "  got[3:11]      [103, 104, 105, 7, 107, 108, 109, 110]",
                                   "  expected[3:11] [103, 104, 105, 106, 107, 108, 109, 110]"]


def test_a_long_list_of_lists_points_into_the_inner_list():
    got, expected = [[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 0, 6]]
    assert value_mismatch("ids", got, expected).startswith("ids[1]: lists differ first at index 1")


def test_a_dict_diff_names_a_few_missing_extra_and_differing_keys():
    expected = {f"k{i}": i for i in range(300)}
    got = {**{f"k{i}": i for i in range(10, 300)}, "x": 1, "k20": 0}
    report = value_mismatch("table", got, expected)
    assert report.splitlines()[0] == ("table: dicts differ: 10 keys missing, 1 extra, 1 with another value "
                                      "(300 keys expected)")
    assert ("'k0', 'k1', 'k2', 'k3', ... (6 more)" in report and "'x': 1" in report
            and "'k20': got 0, expected 20" in report)
    assert len(report) < 400


def test_types_are_those_the_contract_promises():
    assert value_mismatch("n", torch.tensor(7), 7).startswith(
        "n: expected an int, got a 0-d tensor (tensor(7)): convert it with int(...)")
    assert value_mismatch("ids", (1, 2), [1, 2]) == "ids: expected a list, got a tuple ((1, 2))"
    assert value_mismatch("ids", [1, torch.tensor(2)], [1, 2]).startswith("ids[1]: expected an int, got a 0-d tensor")
    assert value_mismatch("factor", 32, 32.0) == "factor: expected a float, got an int (32)"
    assert value_mismatch("flag", 1, True) == "flag: expected a bool, got an int (1)"
    assert value_mismatch("n", True, 1) == "n: expected an int, got a bool (True)"
    assert value_mismatch("table", {b"<|eot_id|>": 1}, {"<|eot_id|>": 1}).startswith(
        "table: keys should be str, got a bytes")
    for same in (7, 32.0, None, "x", [1, [2.0]], {"a": [1]}, (1, 2)):
        assert value_mismatch("v", same, same) is None


def test_a_finite_minimum_where_minus_inf_is_the_contract():
    expected = torch.zeros(3, 3).masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf"))
    got = expected.clamp_min(torch.finfo(torch.float32).min)
    for tol in (TOLERANCES["bf16"], EXACT):
        report = mismatch("mask", got, expected, tol)
        assert report.startswith("mask: torch.finfo(torch.float32).min where -inf is expected "
                                 "(3 of 9 values, first at [0, 1])")
        assert "exactly zero weight" in report and "Use float('-inf')" in report
    assert mismatch("mask", expected, expected, TOLERANCES["bf16"]) is None


def test_captured_output_is_capped():
    assert plugin.capped("a\nb\n") == "a\nb\n"
    long = "".join(f"line {i}\n" for i in range(1000))
    capped = plugin.capped(long)
    assert capped.splitlines()[:plugin.CAPTURED_LINES] == long.splitlines()[:plugin.CAPTURED_LINES]
    assert capped.splitlines()[-1] == f"... {1000 - plugin.CAPTURED_LINES} more lines"


def commands_to_run(items, tmp_path_factory) -> dict:
    """The pytest runs in a learner's tree below, beside the session (tests/conftest.py)."""
    selected, planned = {item.originalname for item in items}, {}
    if "test_a_learner_s_prints_after_a_failure_are_capped" in selected:
        root = tree(tmp_path_factory.mktemp("prints"), plants.planted([plants.faults()["prints_then_doubles"]]))
        planned["prints"] = pytest_command(root, "exercises/test_ex03_embeddings.py", "-k", "test_embed")
    if "test_pytest_on_an_exercise_file_says_where_its_tests_are" in selected:
        planned["exercise file"] = pytest_command(tree(tmp_path_factory.mktemp("file")), "exercises/ex05_qkv.py")
    return planned


def test_a_learner_s_prints_after_a_failure_are_capped(ran):
    out = ran("prints")
    assert out.returncode == 1, out.stdout[-2000:]
    assert "does not match the reference" in out.stdout and "more lines" in out.stdout
    assert "row 14999" not in out.stdout and len(out.stdout.splitlines()) < 400, len(out.stdout.splitlines())


def test_pytest_on_an_exercise_file_says_where_its_tests_are(ran):
    out = ran("exercise file")
    assert out.returncode == 5
    assert ("exercises/ex05_qkv.py is your code, not its tests: run pytest exercises/test_ex05_qkv.py "
            "(or pytest exercises/ -k ex05)") in out.stdout, out.stdout
