"""Text for the learner on stdout: rich in a terminal, plain when piped."""

from rich.cells import cell_len
from rich.console import Console


def console() -> Console:
    """A console on stdout that neither styles nor wraps when stdout is not a terminal."""
    c = Console(highlight=False)
    c.soft_wrap = not c.is_terminal
    return c


def pad(text: str, width: int) -> str:
    """text padded to width terminal cells (a Chinese character takes two)."""
    return text + " " * max(0, width - cell_len(text))


def bar(done: int, total: int, width: int = 24) -> str:
    """[#########---------------] as plain text."""
    filled = round(width * done / total) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"
