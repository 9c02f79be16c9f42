"""Progress bars on stderr, shown only in a terminal."""

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")
console = Console(stderr=True)


def bar(description: str, total: float, bytes_: bool = False) -> Progress:
    """A transient bar; use as a context manager and call .advance(task, n)."""
    columns = [TextColumn("{task.description}"), BarColumn(),
               DownloadColumn() if bytes_ else TextColumn("{task.completed:.0f}/{task.total:.0f}"),
               TimeRemainingColumn()]
    progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
    progress.add_task(description, total=total)
    return progress


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a bar."""
    items = list(items) if total is None else items
    with bar(description, total if total is not None else len(items)) as progress:
        for item in items:
            yield item
            progress.advance(progress.task_ids[0])
