"""The pictures of the extras' experiments, drawn with matplotlib (the optional `pictures` extra) on bare Figures: no
pyplot, no screen, no global state; a Figure saves to PNG with matplotlib's Agg renderer. Token labels are drawn with
the CJK and emoji fonts installed, after matplotlib's own; a character none of them has is written as its escape
(\\u4f60), never as a box."""

import functools
import importlib
import io
import math
import warnings
from pathlib import Path

from .errors import KitError
from .files import write_atomically

INSTALL = "pictures need matplotlib: pip install -e \".[pictures]\""
ROPE_PANELS = 8  # frequencies drawn, from the fastest to the slowest
# fonts with CJK or emoji outlines that Agg can draw (colour-bitmap emoji fonts cannot be), used where installed
FALLBACK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
                  "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB",
                  "Arial Unicode MS", "Noto Emoji", "Segoe UI Emoji", "Segoe UI Symbol", "Symbola")


def require() -> None:
    """A KitError that says how to install matplotlib, unless it is installed: before anything is printed."""
    try:
        importlib.import_module("matplotlib.figure")
    except ImportError:
        raise KitError(INSTALL) from None


@functools.cache
def fonts() -> tuple[tuple[str, ...], frozenset[int]]:
    """(the font families text is drawn with: matplotlib's sans-serif, then the fallback fonts installed; the code
    points those fonts have glyphs for)."""
    from matplotlib import font_manager, ft2font

    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    paths = [font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]))]
    found = [name for name in FALLBACK_FONTS if name in installed]
    covered = set()
    for path in paths + [installed[name] for name in found]:
        try:
            covered |= set(ft2font.FT2Font(path).get_charmap())
        except (OSError, RuntimeError, ValueError):
            pass
    return ("sans-serif", *found), frozenset(covered)


def _font() -> dict:
    """The keyword that draws a text with the fallback fonts."""
    return {"fontfamily": list(fonts()[0])}


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise KitError(INSTALL) from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _array(values):
    """A tensor as the numpy array matplotlib wants; anything else as it is."""
    return values.detach().float().numpy() if hasattr(values, "detach") else values


def label(piece: str) -> str:
    """A token's text as a tick label: whitespace made visible, $ kept literal (matplotlib reads $...$ as math), a
    character no font here has written as its escape."""
    covered = fonts()[1]
    text = "".join(c if ord(c) in covered or c.isspace() else c.encode("unicode_escape").decode() for c in piece)
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("$", r"\$") or "''"


def rope_shown(pairs: int) -> list[int]:
    """The pairs a RoPE picture draws, and explore's table lists: ROPE_PANELS of them, spread evenly from the fastest
    (0) to the slowest (pairs - 1)."""
    return sorted({round(i * (pairs - 1) / (ROPE_PANELS - 1)) for i in range(ROPE_PANELS)})


def attention_map(probs, labels: list[str], title: str):
    """One head's attention probabilities [seq, seq] as a heat map: queries down, keys across, tokens as tick labels."""
    n, probs = len(labels), _array(probs)
    fig = _figure(2.5 + 0.28 * n, 2.0 + 0.26 * n)
    ax = fig.add_subplot()
    image = ax.imshow(probs, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), [label(t) for t in labels], rotation=90, fontsize=8, **_font())
    ax.set_yticks(range(n), [label(t) for t in labels], fontsize=8, **_font())
    ax.set_xlabel("key (the token looked at)")
    ax.set_ylabel("query (the token looking)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="probability")
    return fig


def predictions(probs, ids, labels: list[str], piece, title: str):
    """The top-k table [seq, k]: one row per prompt token (tick labels), each cell the predicted token, coloured by its
    probability."""
    probs, ids = _array(probs), _array(ids)
    seq, k = probs.shape
    fig = _figure(2.0 + 1.3 * k, 1.0 + 0.3 * seq)
    ax = fig.add_subplot()
    ax.imshow(probs, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(seq):
        for j in range(k):
            ax.text(j, i, f"{label(piece(int(ids[i, j])))} {float(probs[i, j]):.2f}", ha="center", va="center",
                    fontsize=7, color="white" if probs[i, j] > 0.6 else "black", **_font())
    ax.set_yticks(range(seq), [label(t) for t in labels], fontsize=8, **_font())
    ax.set_xticks(range(k), [f"#{j + 1}" for j in range(k)], fontsize=8)
    ax.set_ylabel("after this token")
    ax.set_title(title, fontsize=10)
    return fig


def rope_pairs(points, title: str):
    """points [end, pairs, 2], a vector's pairs at every position: one panel per frequency, the pair's point at each
    position coloured by the position, on the circle it cannot leave."""
    points = _array(points)
    end, pairs, _ = points.shape
    shown = rope_shown(pairs)
    fig = _figure(2.0 * len(shown), 2.6)
    axes = fig.subplots(1, len(shown))
    for ax, i in zip(axes, shown):
        xy = points[:, i]
        radius = float((xy[0] ** 2).sum() ** 0.5) or 1.0
        circle = [(radius * math.cos(a / 50 * 2 * math.pi), radius * math.sin(a / 50 * 2 * math.pi)) for a in range(51)]
        ax.plot(*zip(*circle), color="lightgray", linewidth=0.8)
        ax.scatter(xy[:, 0], xy[:, 1], c=range(end), cmap="plasma", s=10)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"pair {i}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def distributions(rows: dict[str, tuple], labels: list[str], title: str):
    """Bar charts side by side, one per setting: rows[name] = probabilities of the tokens named by labels."""
    fig = _figure(1.5 + 2.6 * len(rows), 3.2)
    axes = fig.subplots(1, len(rows), sharey=True)
    for ax, (name, probs) in zip(axes if len(rows) > 1 else [axes], rows.items()):
        ax.barh(range(len(labels)), _array(probs), color="tab:blue")
        ax.set_yticks(range(len(labels)), [label(t) for t in labels], fontsize=8, **_font())
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes (glyphs the font lacks, e.g. CJK, are drawn as boxes without a warning per character)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save(fig, path: Path) -> Path:
    write_atomically(path, png(fig))
    return path
