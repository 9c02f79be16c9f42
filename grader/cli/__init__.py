"""llama3-grader: the scoreboard when run without a verb, and one verb per job. Every error a person can
cause is one line on stderr and exit code 2."""

import argparse
import importlib
import sys

from ..errors import KitError

# verb modules: each has register(subparsers), which adds its verbs with set_defaults(run=...).
# They import torch and friends inside their functions, so `llama3-grader hint 3` starts fast.
VERBS = [
    "grader.cli.generate",
    "grader.cli.fixtures",
    "grader.cli.checkpoint",
    "grader.cli.bench",
    "grader.cli.hints",
    "grader.cli.reset",
    "grader.cli.watch",
    "grader.cli.notebook",
    "grader.cli.chat",
    "grader.cli.explore",
]
SCOREBOARD = "grader.cli.scoreboard"  # add_arguments(parser) and run(args): what runs without a verb


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"llama3-grader: {message} (see llama3-grader --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="llama3-grader", description="Grade your Llama 3 from scratch, and run it.")
    try:
        scoreboard = importlib.import_module(SCOREBOARD)
        scoreboard.add_arguments(p)
        p.set_defaults(run=scoreboard.run)
    except ModuleNotFoundError:
        p.set_defaults(run=lambda args: p.print_help())
    sub = p.add_subparsers(title="verbs", metavar="VERB", parser_class=_Parser)
    for name in VERBS:
        importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = args.run(args)
    except KitError as e:
        print(f"llama3-grader: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code or 0)
