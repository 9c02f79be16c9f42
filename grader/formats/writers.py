"""Checkpoint folders written in Meta's layout or Hugging Face's (checkpoint.py reads them): where they may go, how
much space they take, the partial folder they are written into and renamed from (never half a folder), and
params.json with consolidated.*.pth, or config.json with model*.safetensors, streamed tensor by tensor."""

import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from solutions.ex02_checkpoint import model_args

from . import shards
from . import tokenizer as tokenizers
from ..errors import KitError
from ..files import make_folder
from ..i18n import say
from ..paths import ROOT
from ..progress import bar


def check_out_folder(out: Path, force: bool | None = False) -> None:
    """A folder to write a checkpoint into: outside the repository, and empty unless force (None: the verb has no
    --force), in a folder that can be written."""
    out = out.expanduser()
    if out.resolve().is_relative_to(ROOT):
        raise KitError(f"{out} is inside the kit's repository: write checkpoints elsewhere (e.g. /tmp or ~/models) "
                       "so they are never committed")
    if out.exists() and not out.is_dir():
        raise KitError(f"{out} is a file: pass a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        key = "formats.writers.not_empty_force" if force is False else "formats.writers.not_empty"
        raise KitError(say(key, out=out))
    make_folder(out.parent)


SMALL_FILES = 1 << 20  # bytes allowed for params.json, config.json, checklist.chk, NOTICE and the index
PER_TENSOR = 4096  # bytes a tensor's record may add in a .pth or .safetensors file, beyond its data


def bytes_written(weights: dict[str, int] | int, tokenizer: Path | None = None) -> int:
    """What writing a checkpoint puts on disk, at most: the weights' bytes (a total, or bytes by tensor), a record per
    tensor, the tokenizer's files, the small files."""
    data = weights if isinstance(weights, int) else sum(weights.values())
    records = 0 if isinstance(weights, int) else PER_TENSOR * len(weights)
    files = [tokenizer, Path(tokenizer).with_name(tokenizers.PARAMS)] if tokenizer is not None else []
    return data + records + sum(f.stat().st_size for f in files if f.is_file()) + SMALL_FILES


def check_free_space(out: Path, nbytes: int) -> None:
    """A KitError unless out's disk has room for nbytes, and a little more."""
    parent = out.expanduser()
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < nbytes * 1.05:
        raise KitError(f"{out} needs {nbytes / 1e9:.1f} GB but its disk has {free / 1e9:.1f} GB free: "
                       "choose --out on another disk or free space")


@contextmanager
def partial_folder(out: Path):
    """A new folder beside out to write everything into. When the block ends, it becomes out (its files are moved into
    out when out holds other files, with --force); when anything stops the block (a full disk, Ctrl-C), it is removed
    and out is left as it was. A write that fails is a KitError that says so."""
    out = out.expanduser()
    make_folder(out.parent)
    work = out.parent / f".{out.name}.partial-{os.getpid()}-{time.time_ns()}"
    work.mkdir()
    try:
        try:
            yield work
        except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
            shutil.rmtree(work, ignore_errors=True)
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            free = shutil.disk_usage(out.parent).free
            raise KitError(say("formats.writers.failed", out=out, why=why, free=free / 1e9)) from None
        if out.is_dir() and any(out.iterdir()):
            for path in work.iterdir():
                if (out / path.name).is_dir() and path.is_dir():
                    shutil.rmtree(out / path.name)
                os.replace(path, out / path.name)
            work.rmdir()
        else:
            os.replace(work, out)  # a new out, or an empty one
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _params_text(params: dict | str) -> str:
    return params if isinstance(params, str) else json.dumps(params, indent=4)


def save_meta(folder: Path, weights: dict[str, torch.Tensor], params: dict | str, tokenizer: Path | None = None,
              n_shards: int = 1) -> None:
    """params.json (a dict, or the text of an original file to keep its bytes) and consolidated.00.pth as Meta ships
    them, and tokenizer.model (with its tokenizer_params.json) if given. A tied output.weight that is the same tensor
    as tok_embeddings.weight is stored once, as in Meta's 3.2 files. With n_shards, the weights are split over
    consolidated.00.pth .. as Meta ships its 70B models (formats/shards.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_text(_params_text(params))
    if n_shards > 1:
        shards.save(folder, weights, model_args(json.loads(_params_text(params))), n_shards)
    else:
        torch.save(weights, folder / "consolidated.00.pth")
    if tokenizer is not None:
        tokenizers.copy(tokenizer, folder)


def save_hf(
    folder: Path, weights: dict[str, torch.Tensor], config: dict, params: dict | str,
    tokenizer: Path | None = None, shard_bytes: int = 5 * 2**30,
) -> None:
    """config.json and model.safetensors (sharded with an index above shard_bytes); params.json and tokenizer.model in
    original/. Tensors are streamed to disk one at a time: a memory-mapped 16 GB model is never held in memory."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    shards, size = [[]], 0
    for name, w in weights.items():
        nbytes = w.numel() * w.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    total = sum(w.numel() * w.element_size() for w in weights.values())
    with bar("writing safetensors", total, bytes_=True) as progress:
        def advance(n):
            progress.advance(progress.task_ids[0], n)
        if len(shards) == 1:
            write_safetensors(folder / "model.safetensors", {k: weights[k] for k in shards[0]}, advance)
        else:
            weight_map = {}
            for i, names in enumerate(shards, 1):
                filename = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
                write_safetensors(folder / filename, {k: weights[k] for k in names}, advance)
                weight_map |= dict.fromkeys(names, filename)
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    original = folder / "original"
    original.mkdir(exist_ok=True)
    (original / "params.json").write_text(_params_text(params))
    if tokenizer is not None:
        tokenizers.copy(tokenizer, original)


_ST_DTYPES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], advance=lambda n: None) -> None:
    """The safetensors format (8-byte header length, JSON header padded to 8 bytes, raw little-endian data), written
    tensor by tensor, so nothing larger than one tensor is ever copied (safetensors.torch.save_file copies them all)."""
    header, offset = {}, 0
    for name, t in tensors.items():
        n = t.numel() * t.element_size()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for t in tensors.values():
            data = t.detach().contiguous().reshape(-1).view(torch.uint8)
            for start in range(0, data.numel(), 1 << 28):  # 256 MiB at a time
                chunk = data[start : start + (1 << 28)]
                f.write(memoryview(chunk.numpy()))
                advance(chunk.numel())
