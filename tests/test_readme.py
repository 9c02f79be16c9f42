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


def test_ci_also_runs_the_opt_in_slow_tests():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci.index("pytest -m slow") > ci.index(_setup_commands()[1])
    assert "-m 'not slow'" in (ROOT / "pyproject.toml").read_text(), "the README's pytest leaves the slow tests out"


def test_the_readme_names_check_and_the_notebooks_extra():
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"nbclient", "ipykernel"} <= {re.split(r"[<>=]", d)[0] for d in extras["notebooks"]}
    for readme in ("README.md", "README.zh.md"):
        text = (ROOT / readme).read_text()
        assert 'pip install -e ".[notebooks]"' in text and "llama3-grader --check" in text, readme


def test_the_readme_counts_the_named_mistakes_right():
    from grader import specs

    assert re.search(r"(\d+) in all\)", (ROOT / "README.md").read_text()).group(1) == str(len(specs.MISTAKES))
    assert re.search(r"共 (\d+) 种", (ROOT / "README.zh.md").read_text()).group(1) == str(len(specs.MISTAKES))
