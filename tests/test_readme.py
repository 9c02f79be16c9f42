"""README opens with exactly two set-up commands, and CI runs the second one verbatim."""

import re

from grader.paths import ROOT


def _setup_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return block.group(1).strip().splitlines()


def test_readme_opens_with_two_commands_scoreboard_then_tests():
    install_and_run, install_and_test = _setup_commands()
    assert install_and_run.endswith("llama3-grader") and "pip install" in install_and_run
    assert install_and_test.endswith("pytest") and '".[dev]"' in install_and_test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _setup_commands()[1] in ci


def test_the_chinese_readme_gives_the_same_commands():
    zh = re.search(r"```bash\n(.*?)```", (ROOT / "README.zh.md").read_text(), re.S).group(1).strip().splitlines()
    assert zh == _setup_commands()
