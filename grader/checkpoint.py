"""Checkpoint folders in Meta's layout or Hugging Face's: read them (checked, one-line errors) and write them."""

import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from solutions.ex02_checkpoint import ModelArgs, model_args

from . import hf_layout
from .errors import KitError
from .paths import MODELS, TOKENIZER
from .progress import bar

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
META_KEYS = ("dim", "n_layers", "n_heads", "vocab_size", "multiple_of", "norm_eps", "rope_theta")
HF_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "rms_norm_eps")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
N_SPECIAL_TOKENS = 256


@dataclass
class Checkpoint:
    folder: Path
    layout: str  # "meta" or "hf"
    args: ModelArgs
    weights: dict[str, torch.Tensor]  # Meta's names and q/k order; output.weight is tok_embeddings.weight when tied
    tokenizer_path: Path

    @property
    def tied(self) -> bool:
        out, emb = self.weights["output.weight"], self.weights["tok_embeddings.weight"]
        return out.data_ptr() == emb.data_ptr() or torch.equal(out, emb)

    @property
    def nbytes(self) -> int:
        """Bytes of weights, counting shared storage once."""
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in self.weights.values()}
        return sum(storages.values())

    @property
    def dtype(self) -> torch.dtype:
        return self.weights["tok_embeddings.weight"].dtype


def resolve(folder: str | Path | None) -> Path:
    """--checkpoint, else LLAMA3_CHECKPOINT, else the tiny Llama 3 fixture."""
    folder = folder or os.environ.get("LLAMA3_CHECKPOINT") or MODELS / "tiny-llama3"
    return Path(folder).expanduser()


def detect_layout(folder: Path) -> str:
    if not folder.is_dir():
        raise KitError(f"checkpoint folder {folder} does not exist: pass --checkpoint DIR or set LLAMA3_CHECKPOINT to a Meta or Hugging Face model folder")
    if (folder / "params.json").is_file() or list(folder.glob("consolidated.*.pth")):
        return "meta"
    if (folder / "config.json").is_file():
        return "hf"
    raise KitError(f"{folder} is neither Meta's layout (params.json + consolidated.00.pth) nor Hugging Face's (config.json + model*.safetensors): point to the folder that holds those files")


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise KitError(f"{path} is missing: a {what} folder needs it; download it with the weights")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KitError(f"{path} is not valid JSON ({e}): download it again") from None


def _require(cfg: dict, keys, path: Path) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KitError(f"{path} lacks {', '.join(missing)}: is this a Llama 3 file? download it again")


def read_args(folder: Path, layout: str) -> ModelArgs:
    """ModelArgs from params.json (Meta) or config.json (Hugging Face)."""
    if layout == "meta":
        path = folder / "params.json"
        params = _read_json(path, "Meta checkpoint")
        _require(params, META_KEYS, path)
        return model_args(params)
    path = folder / "config.json"
    cfg = _read_json(path, "Hugging Face checkpoint")
    _require(cfg, HF_KEYS, path)
    theta, scaling = hf_layout.rope_settings(cfg)
    if theta is None:
        raise KitError(f"{path} lacks rope_theta: is this a Llama 3 file? download it again")
    factor = None
    if scaling is not None:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind != "llama3" or any(scaling.get(k) != v for k, v in hf_layout.LLAMA3_ROPE.items()):
            raise KitError(f"{path} has rope_scaling {scaling}, not Llama 3.1's: only Llama 3, 3.1 and 3.2 models are supported")
        factor = float(scaling["factor"])
    return ModelArgs(
        dim=cfg["hidden_size"],
        n_layers=cfg["num_hidden_layers"],
        n_heads=cfg["num_attention_heads"],
        n_kv_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
        vocab_size=cfg["vocab_size"],
        norm_eps=cfg["rms_norm_eps"],
        rope_theta=float(theta),
        hidden_dim=cfg["intermediate_size"],
        rope_scale_factor=factor,
        max_seq_len=cfg.get("max_position_embeddings", 8192 if factor is None else 131072),
    )


def _check_not_pointer(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(len(LFS_POINTER))
    if head == LFS_POINTER:
        raise KitError(f"{path} is a git-lfs pointer, not the weights: run `git lfs pull` in {path.parent} (or download the file itself)")


def _read_meta_weights(folder: Path) -> dict[str, torch.Tensor]:
    shards = sorted(folder.glob("consolidated.*.pth"))
    if not shards:
        raise KitError(f"{folder / 'consolidated.00.pth'} is missing: download it into {folder} with params.json")
    if len(shards) > 1:
        raise KitError(f"{folder} holds {len(shards)} consolidated.*.pth shards (a 70B-class model split for tensor parallelism): the kit runs one-file checkpoints (8B, 3.2 1B/3B) in one process; larger ones need the tensor-parallel extra")
    path = shards[0]
    _check_not_pointer(path)
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise KitError(f"{path} was refused by torch.load(weights_only=True), it would run code or holds non-tensor objects ({first}): use genuine weights only") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        raise KitError(f"{path} is truncated or corrupt ({first}): download it again, then run `llama3-grader checkpoint verify`") from None


def _hf_shards(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index, "Hugging Face checkpoint").get("weight_map", {})
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / "model.safetensors"
    shards = [single] if single.is_file() else sorted(folder.glob("model-*-of-*.safetensors"))
    if not shards:
        raise KitError(f"{folder} has config.json but no model.safetensors: download the weights into it")
    return shards


def _read_hf_weights(folder: Path, args: ModelArgs) -> dict[str, torch.Tensor]:
    weights = {}
    shards = _hf_shards(folder)
    total = sum(p.stat().st_size for p in shards if p.is_file())
    with bar("loading weights", total, bytes_=True) as progress:
        for path in shards:
            if not path.is_file():
                raise KitError(f"{path} is missing (named in model.safetensors.index.json): download it into {folder}")
            _check_not_pointer(path)
            try:
                with safe_open(path, framework="pt") as f:
                    for key in f.keys():
                        weights[key] = f.get_tensor(key)
            except SafetensorError as e:
                raise KitError(f"{path} is truncated or corrupt ({e}): download it again") from None
            progress.advance(progress.task_ids[0], path.stat().st_size)
    return hf_layout.to_meta(weights, args)


def expected_shapes(args: ModelArgs) -> dict[str, tuple[int, ...]]:
    """Meta's tensor names and shapes for these args."""
    hd = args.head_dim
    shapes = {"tok_embeddings.weight": (args.vocab_size, args.dim)}
    for i in range(args.n_layers):
        p = f"layers.{i}."
        shapes |= {
            p + "attention.wq.weight": (args.n_heads * hd, args.dim),
            p + "attention.wk.weight": (args.n_kv_heads * hd, args.dim),
            p + "attention.wv.weight": (args.n_kv_heads * hd, args.dim),
            p + "attention.wo.weight": (args.dim, args.n_heads * hd),
            p + "feed_forward.w1.weight": (args.hidden_dim, args.dim),
            p + "feed_forward.w3.weight": (args.hidden_dim, args.dim),
            p + "feed_forward.w2.weight": (args.dim, args.hidden_dim),
            p + "attention_norm.weight": (args.dim,),
            p + "ffn_norm.weight": (args.dim,),
        }
    shapes["norm.weight"] = (args.dim,)
    shapes["output.weight"] = (args.vocab_size, args.dim)
    return shapes


def check_shapes(weights: dict[str, torch.Tensor], args: ModelArgs, folder: Path) -> None:
    for name, shape in expected_shapes(args).items():
        if name not in weights:
            raise KitError(f"{folder} has no tensor {name}: the weights do not belong to this params/config file")
        if tuple(weights[name].shape) != shape:
            raise KitError(f"{folder}: {name} has shape {list(weights[name].shape)} but the config implies {list(shape)}: weights and config come from different models")


def tokenizer_path(folder: Path) -> Path:
    """The folder's tokenizer.model (or original/tokenizer.model), else the one shipped in fixtures/."""
    for candidate in (folder / "tokenizer.model", folder / "original" / "tokenizer.model"):
        if candidate.is_file():
            return candidate
    return TOKENIZER


def _check_vocab(args: ModelArgs, tokenizer: Path, folder: Path) -> None:
    with open(tokenizer, "rb") as f:
        n_words = sum(1 for line in f if line.strip()) + N_SPECIAL_TOKENS
    if args.vocab_size != n_words:
        raise KitError(f"{folder} has vocab_size {args.vocab_size} but {tokenizer} has {n_words} tokens: use the tokenizer.model that came with these weights")


def load(folder: str | Path | None = None, dtype: str | torch.dtype | None = None) -> Checkpoint:
    """Open a checkpoint: args, weights (memory-mapped where the format allows), tokenizer path."""
    folder = resolve(folder)
    layout = detect_layout(folder)
    args = read_args(folder, layout)
    tokenizer = tokenizer_path(folder)
    _check_vocab(args, tokenizer, folder)
    weights = _read_meta_weights(folder) if layout == "meta" else _read_hf_weights(folder, args)
    weights.setdefault("output.weight", weights.get("tok_embeddings.weight"))  # tied embeddings
    check_shapes(weights, args, folder)
    weights = {k: weights[k] for k in expected_shapes(args)}
    if dtype is not None:
        weights = cast(weights, dtype)
    return Checkpoint(folder, layout, args, weights, tokenizer)


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise KitError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def cast(weights: dict[str, torch.Tensor], dtype: str | torch.dtype) -> dict[str, torch.Tensor]:
    """Weights in dtype, keeping tied tensors tied; a no-op (no copy) when they already are."""
    dtype = parse_dtype(dtype)
    cast_once = {}
    out = {}
    for name, w in weights.items():
        if id(w) not in cast_once:
            cast_once[id(w)] = w.to(dtype)
        out[name] = cast_once[id(w)]
    return out


def page_in(weights: dict[str, torch.Tensor]) -> None:
    """Read every page of memory-mapped weights once, with a progress bar, so the first forward is not the one that waits."""
    unique = {t.untyped_storage().data_ptr(): t for t in weights.values()}
    total = sum(t.untyped_storage().nbytes() for t in unique.values())
    with bar("reading weights", total, bytes_=True) as progress:
        for t in unique.values():
            flat = t.reshape(-1).view(torch.uint8)
            flat[:: 4096].sum()
            progress.advance(progress.task_ids[0], t.untyped_storage().nbytes())


def save_meta(folder: Path, weights: dict[str, torch.Tensor], params: dict, tokenizer: Path | None = None) -> None:
    """params.json and consolidated.00.pth as Meta ships them, and tokenizer.model if given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_text(json.dumps(params, indent=4))
    torch.save(weights, folder / "consolidated.00.pth")
    if tokenizer is not None:
        shutil.copyfile(tokenizer, folder / "tokenizer.model")


def save_hf(
    folder: Path, weights: dict[str, torch.Tensor], config: dict, params: dict,
    tokenizer: Path | None = None, shard_bytes: int = 5 * 2**30,
) -> None:
    """config.json and model.safetensors (sharded with an index above shard_bytes); params.json and tokenizer.model in original/."""
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
    if len(shards) == 1:
        save_file({k: weights[k].contiguous() for k in shards[0]}, folder / "model.safetensors", metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, names in enumerate(shards, 1):
            filename = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file({k: weights[k].contiguous() for k in names}, folder / filename, metadata={"format": "pt"})
            weight_map |= dict.fromkeys(names, filename)
        total = sum(w.numel() * w.element_size() for w in weights.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    original = folder / "original"
    original.mkdir(exist_ok=True)
    (original / "params.json").write_text(json.dumps(params, indent=4))
    if tokenizer is not None:
        shutil.copyfile(tokenizer, original / "tokenizer.model")
