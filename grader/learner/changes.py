"""Saves of .py files in a folder, as events on a queue: file notifications (watchdog) where they work,
polling otherwise."""

import queue
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.5


def watch(folder: Path, events: queue.Queue, poll: bool = False) -> str:
    """Put ("saved", path) on events whenever a .py file directly in folder is written; returns "notifications"
    or "polling", whichever is used."""
    if not poll:
        try:
            _notify(folder, events)
            return "notifications"
        except (ImportError, OSError):  # no watchdog, or no inotify watches left
            pass
    threading.Thread(target=_poll, args=(folder, events), daemon=True).start()
    return "polling"


def _is_source(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".py" and not p.name.startswith(".")


def _notify(folder: Path, events: queue.Queue) -> None:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Saved(FileSystemEventHandler):
        def on_any_event(self, event):
            # "modified", "created", "moved" (editors that save by renaming) and "closed" (after writing); not
            # "opened" or "closed_no_write", which grading itself causes by reading the files
            if event.event_type in ("modified", "created", "moved", "closed"):
                path = getattr(event, "dest_path", "") or event.src_path
                if _is_source(path):
                    events.put(("saved", path))

    observer = Observer()
    observer.schedule(Saved(), str(folder), recursive=False)
    observer.daemon = True
    observer.start()


def _snapshot(folder: Path) -> dict:
    found = {}
    for p in folder.glob("*.py"):
        try:
            st = p.stat()
            found[p] = (st.st_mtime_ns, st.st_size)
        except OSError:
            pass
    return found


def _poll(folder: Path, events: queue.Queue) -> None:
    before = _snapshot(folder)
    while True:
        time.sleep(POLL_SECONDS)
        now = _snapshot(folder)
        for path in [p for p in now if now[p] != before.get(p)]:
            if _is_source(str(path)):
                events.put(("saved", str(path)))
        before = now
