"""Checkpoint folders in Meta's layout or Hugging Face's, read (checked, one-line errors); writers.py writes them.

Meta:          params.json, consolidated.00.pth, tokenizer.model (and checklist.chk)
Hugging Face:  config.json, model.safetensors or model-0000i-of-0000n.safetensors + model.safetensors.index.json,
               original/tokenizer.model (and original/params.json)
A tokenizer_params.json beside tokenizer.model names a tokenizer other than Llama 3's (tokenizer.py; e.g. SmolLM2's,
imported from a GGUF by gguf.py).

Whatever the layout, load() returns Meta's tensor names with Meta's interleaved q/k row order, memory-mapped and in
the file's dtype: nothing is copied except the q/k rows of a Hugging Face checkpoint, which must be reordered. A model
Meta split over several consolidated.*.pth files (shards.py) is read as one: Merged concatenates a tensor when it is
read.
"""

import functools
import json
import os
import pickle
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open

from solutions.ex02_checkpoint import ModelArgs, model_args

from . import hf_layout, metadata
from . import tokenizer as tokenizers
from ..errors import KitError
from ..i18n import say
from ..paths import MODELS, TOKENIZER
from ..progress import bar

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
META_KEYS = ("dim", "n_layers", "n_heads", "vocab_size", "multiple_of", "norm_eps", "rope_theta")
HF_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "rms_norm_eps")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
DTYPE_ALIASES = {"bf16": "bfloat16", "fp32": "float32", "float": "float32"}
ROPE_FACTOR_ENV = "LLAMA3_ROPE_SCALE_FACTOR"
KV = ("attention.wk.weight", "attention.wv.weight")
MERGE_FRACTION = 0.8  # of the memory available, at most what merging a multi-shard checkpoint into one process may take


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

    @functools.cached_property
    def tokenizer(self) -> tokenizers.Tokenizer:
        """Llama 3's, or the one the folder's tokenizer_params.json describes (a model imported from a GGUF)."""
        return tokenizers.load(self.tokenizer_path)


def resolve(folder: str | Path | None) -> Path:
    """--checkpoint, else LLAMA3_CHECKPOINT, else the tiny Llama 3 fixture."""
    folder = folder or os.environ.get("LLAMA3_CHECKPOINT") or MODELS / "tiny-llama3"
    return Path(folder).expanduser()


def _looks_like_checkpoint(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("params.json", "config.json", "consolidated.00.pth"))


def detect_layout(folder: Path) -> str:
    """"meta" or "hf", or a KitError that says what is wrong with the folder."""
    if not folder.exists():
        raise KitError(f"checkpoint folder {folder} does not exist: pass --checkpoint DIR or set LLAMA3_CHECKPOINT "
                       "to a Meta or Hugging Face model folder")
    if not folder.is_dir():
        raise KitError(f"{folder} is a file, not a folder: pass the folder that holds it "
                       f"(--checkpoint {folder.parent})")
    if list(folder.glob("consolidated.*.pth")):
        return "meta"
    if (folder / "config.json").is_file():
        return "hf"
    if (folder / "params.json").is_file():
        return "meta"  # its weights are missing: _read_meta_weights says so
    hint = ""
    inside = sorted(d for d in folder.iterdir() if d.is_dir() and _looks_like_checkpoint(d)) if folder.is_dir() else []
    if inside:
        hint = f"; did you mean {inside[0]}?"
    raise KitError(f"{folder} is neither Meta's layout (params.json + consolidated.00.pth) nor Hugging Face's "
                   f"(config.json + model*.safetensors): point to the folder that holds those files{hint}")


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise KitError(f"{path} is missing: a {what} folder needs it; download it with the weights")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KitError(f"{path} is not valid JSON ({e}): download it again") from None
    if not isinstance(data, dict):
        raise KitError(f"{path} is not a JSON object: download it again")
    return data


def _require(cfg: dict, keys, path: Path) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KitError(f"{path} lacks {', '.join(missing)}: is this a Llama 3 file? download it again")


def rope_factor_override(value: float | str | None = None) -> float | None:
    """An explicit RoPE scale factor: the argument, else LLAMA3_ROPE_SCALE_FACTOR, else None (the checkpoint
    decides)."""
    raw = value if value is not None else os.environ.get(ROPE_FACTOR_ENV) or None
    if raw is None:
        return None
    try:
        factor = float(raw)
    except ValueError:
        factor = float("nan")
    if not factor > 0:
        raise KitError(f"RoPE scale factor {metadata.shown(raw)} is not a positive number: use e.g. 32 "
                       "(Llama 3.2 1B/3B) or 8 (Llama 3.1)")
    return factor


def read_args(folder: Path, layout: str, rope_scale_factor: float | str | None = None) -> ModelArgs:
    """ModelArgs from params.json (Meta) or config.json (Hugging Face); rope_scale_factor overrides the factor."""
    args = _read_meta_args(folder) if layout == "meta" else _read_hf_args(folder)
    factor = rope_factor_override(rope_scale_factor)
    if factor is not None:
        if args.rope_scale_factor is None:
            raise KitError(f"{folder} does not use scaled RoPE (Llama 3, not 3.1/3.2), so a RoPE scale factor does "
                           f"not apply: unset {ROPE_FACTOR_ENV} / drop --rope-scale-factor")
        args = replace(args, rope_scale_factor=factor)
    return args


def _read_meta_args(folder: Path) -> ModelArgs:
    path = folder / "params.json"
    params = _read_json(path, "Meta checkpoint")
    _require(params, META_KEYS, path)
    metadata.meta_params(params, path)
    args = model_args(params)
    metadata.model_shape(args, path)
    return args


def _read_hf_args(folder: Path) -> ModelArgs:
    path = folder / "config.json"
    cfg = _read_json(path, "Hugging Face checkpoint")
    _require(cfg, HF_KEYS, path)
    theta, scaling = hf_layout.rope_settings(cfg)
    if theta is None:
        raise KitError(f"{path} lacks rope_theta: is this a Llama 3 file? download it again")
    metadata.hf_config(cfg, theta, path)
    factor = None
    if scaling is not None:
        kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
        if (kind != "llama3" or any(scaling.get(k) != v for k, v in hf_layout.LLAMA3_ROPE.items())
                or "factor" not in scaling):
            raise KitError(f"{path} has rope_scaling {metadata.shown(scaling)}, not Llama 3.1's: only Llama 3, 3.1 "
                           "and 3.2 models are supported")
        factor = metadata.number(scaling["factor"], "rope_scaling.factor", path)
    args = ModelArgs(
        dim=cfg["hidden_size"],
        n_layers=cfg["num_hidden_layers"],
        n_heads=cfg["num_attention_heads"],
        n_kv_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
        vocab_size=cfg["vocab_size"],
        norm_eps=cfg["rms_norm_eps"],
        rope_theta=float(theta),
        hidden_dim=cfg["intermediate_size"],
        rope_scale_factor=factor,
        max_seq_len=cfg.get("max_position_embeddings") or (8192 if factor is None else 131072),
    )
    metadata.model_shape(args, path)
    if cfg.get("head_dim") not in (None, args.head_dim):
        raise KitError(f"{path} has head_dim {cfg['head_dim']} but hidden_size / num_attention_heads = "
                       f"{args.head_dim}: Llama 3 models have head_dim = dim / n_heads; this is another architecture")
    return args


def _check_not_pointer(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(len(LFS_POINTER))
    if head == LFS_POINTER:
        raise KitError(f"{path} is a git-lfs pointer, not the weights: run `git lfs pull` in {path.parent} "
                       "(or download the file itself)")


def meta_shards(folder: Path) -> list[Path]:
    """The folder's consolidated.*.pth files, sorted; a KitError for a folder of that name."""
    paths = sorted(folder.glob("consolidated.*.pth"))
    for path in paths:
        if path.is_dir():
            raise KitError(say("formats.checkpoint.shard_folder", path=path))
    return paths


def saved_as(path: Path) -> str | None:
    """The name torch.save gave a file, which it keeps inside (the root folder of its zip archive): consolidated.01
    for a file saved as consolidated.01.pth, whatever it is called now; None when it cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()[0].split("/")[0]
    except (zipfile.BadZipFile, OSError, IndexError):
        return None


def _read_meta_weights(folder: Path, args: ModelArgs) -> dict[str, torch.Tensor]:
    paths = meta_shards(folder)
    if not paths:
        raise KitError(f"{folder / 'consolidated.00.pth'} is missing: download it into {folder} with params.json")
    for path in paths:
        _check_not_pointer(path)
    if len(paths) == 1:
        return load_pth(paths[0])
    return _merge_shards(folder, paths, args)


def read_shards(folder: Path, args: ModelArgs) -> list[dict[str, torch.Tensor]]:
    """The consolidated.*.pth files of a folder, memory-mapped, each checked against its share of the model."""
    paths = meta_shards(folder)
    names = [p.name for p in paths]
    expected = [f"consolidated.{i:02d}.pth" for i in range(len(paths))]
    if names != expected:
        missing = sorted(set(expected) - set(names)) or [names[-1]]
        raise KitError(f"{folder} holds {len(paths)} consolidated.*.pth shards, but not "
                       f"{', '.join(expected[:2])}, ...: {missing[0]} is missing or misnamed; download every shard "
                       "(run `llama3-grader checkpoint verify`)")
    files = [load_pth(p) for p in paths]
    problems = shard_file_problems(paths, files, args)
    if problems:
        raise KitError(f"{folder}: {problems[0]}")
    problems = shard_problems(files, args, names)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KitError(f"{folder}: {problems[0]}{more}: the shards and params.json come from different models; "
                       "run `llama3-grader checkpoint verify` for the full list")
    return files


def _merge_shards(folder: Path, paths: list[Path], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Every shard concatenated into one model, in memory: where it fits."""
    need = sum(p.stat().st_size for p in paths)
    available = available_memory()
    if available is not None and need > MERGE_FRACTION * available:
        raise KitError(f"{folder} holds {len(paths)} consolidated.*.pth shards, a model of {need / 1e9:.1f} GB, "
                       f"and merging them in one process needs that much memory ({available / 1e9:.1f} GB "
                       f"available): run it as {len(paths)} processes instead, `llama3-grader generate --ranks "
                       f"{len(paths)} --checkpoint {folder}` (tensor parallelism: exercise 17; across machines with "
                       "torchrun, see docs/tensor-parallel.md)")
    merged = Merged(read_shards(folder, args), args)
    return {name: merged[name] for name in merged}


def _parallel_layout():
    from solutions import ex17_tensor_parallel  # the rule of which dimension each tensor is split along

    return ex17_tensor_parallel


def shard_shapes(args, n: int) -> list[dict[str, tuple[int, ...]]]:
    """The tensor shapes of each of n files in Meta's layout (computed on the meta device: no memory)."""
    full = {name: torch.empty(shape, device="meta") for name, shape in expected_shapes(args).items()}
    layout = _parallel_layout()
    return [{name: tuple(t.shape) for name, t in layout.shard_weights(full, args, r, n).items()} for r in range(n)]


class Merged(Mapping):
    """n files' shares as one model: merged[name] is the whole tensor, concatenated along its split dimension when
    read (a copy), or the first file's own tensor when every file holds it whole."""

    def __init__(self, shards: list[Mapping[str, torch.Tensor]], args):
        self.shards, self.args = shards, args

    def __getitem__(self, name: str) -> torch.Tensor:
        dim = _parallel_layout().split_dim(name)
        if dim is None or len(self.shards) == 1:
            return self.shards[0][name]
        whole = torch.cat([s[name] for s in self.shards], dim)
        n_kv, n = self.args.n_kv_heads, len(self.shards)
        if name.endswith(KV) and n > n_kv:  # each K/V head was repeated in n // n_kv files: keep one of each
            head_dim = whole.shape[0] // n
            whole = whole.view(n, head_dim, -1)[:: n // n_kv].reshape(n_kv * head_dim, -1)
        return whole

    def __iter__(self) -> Iterator[str]:
        return iter(self.shards[0])

    def __len__(self) -> int:
        return len(self.shards[0])


def shard_file_problems(paths: list[Path], shards: list[Mapping[str, torch.Tensor]], args) -> list[str]:
    """What is wrong with a model's files as a whole, each with what to do: as many files as the model was split into
    (told by the rows of the embedding table each one holds), each under the name it was saved as, one dtype."""
    problems = []
    rows = shards[0].get("tok_embeddings.weight")
    rows = rows.shape[0] if rows is not None and rows.dim() == 2 else 0
    if rows and args.vocab_size % rows == 0 and args.vocab_size // rows != len(shards):
        total, names = args.vocab_size // rows, [p.name for p in paths]
        expected = [f"consolidated.{i:02d}.pth" for i in range(total)]
        missing, extra = [n for n in expected if n not in names], [n for n in names if n not in expected]
        key = "formats.checkpoint.shards_missing" if missing else "formats.checkpoint.shards_extra"
        key = "formats.checkpoint.shards_whole" if total == 1 else key
        problems.append(say(key, n=len(shards), total=total, rows=rows, vocab_size=args.vocab_size,
                            names=", ".join(missing or extra), first=names[0]))
    for path in paths:
        name = saved_as(path)
        if name is not None and name != path.stem and re.fullmatch(r"consolidated\.\d+", name):
            problems.append(say("formats.checkpoint.shard_renamed", file=path.name, saved=f"{name}.pth"))
    everything = {f"{p.name}: {name}": t for p, shard in zip(paths, shards) for name, t in shard.items()}
    problems += dtype_problems(everything)
    return problems


def shard_problems(shards: list[Mapping[str, torch.Tensor]], args, names: list[str]) -> list[str]:
    """Every tensor of every file that is missing or misshapen for this many files of this model."""
    missing = missing_layers(shards[0], args)
    if missing:
        return [f"{names[0]}: {missing}"]
    problems = []
    for name, shard, shapes in zip(names, shards, shard_shapes(args, len(shards))):
        for key, shape in shapes.items():
            if key not in shard:
                if key != "output.weight" or "tok_embeddings.weight" not in shard:
                    problems.append(f"{name} has no tensor {key}")
            elif tuple(shard[key].shape) != shape:
                problems.append(f"{name}: {key} has shape {list(shard[key].shape)} but {len(shards)} shards of this "
                                f"model give {list(shape)}")
    return problems


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes, or None where there is none."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def load_pth(path: Path) -> dict[str, torch.Tensor]:
    """torch.load with mmap and weights_only, every failure a KitError."""
    try:
        weights = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise KitError(f"{path} was refused by torch.load(weights_only=True), it would run code or holds "
                       f"non-tensor objects ({first}): use genuine weights only") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0].removesuffix(".")
        raise KitError(f"{path} is truncated or corrupt ({first}): download it again, then run "
                       "`llama3-grader checkpoint verify`") from None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise KitError(f"{path} does not hold a dict of tensors: it is not a Meta consolidated.00.pth; "
                       "download it again")
    return weights


def hf_shards(folder: Path) -> list[Path]:
    """The safetensors files of a Hugging Face folder: from the index, else model.safetensors, else model-*-of-*."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index, "Hugging Face checkpoint").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise KitError(f"{index} has no weight_map: download it again")
        for key, name in weight_map.items():
            if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
                raise KitError(say("formats.checkpoint.index_entry", index=index, key=metadata.shown(key),
                                   name=metadata.shown(name)))
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / "model.safetensors"
    shards = [single] if single.is_file() else sorted(folder.glob("model-*-of-*.safetensors"))
    if not shards:
        if list(folder.glob("pytorch_model*.bin")) or list(folder.glob("*.gguf")):
            raise KitError(f"{folder} holds pytorch_model*.bin or .gguf weights, which the kit does not read: "
                           "download the model*.safetensors files of the same Hugging Face repository "
                           "(or original/ in Meta's layout)")
        raise KitError(f"{folder} has config.json but no model.safetensors: download the weights into it")
    return shards


def _read_hf_weights(folder: Path, args: ModelArgs, tied: bool) -> dict[str, torch.Tensor]:
    weights = {}
    shards = hf_shards(folder)
    for path in shards:
        if not path.is_file():
            raise KitError(f"{path} is missing (named in model.safetensors.index.json): download it into {folder}")
    for path in shards:
        _check_not_pointer(path)
        try:
            with safe_open(path, framework="pt") as f:  # memory-mapped: get_tensor reads nothing yet
                for key in f.keys():
                    weights[key] = f.get_tensor(key)
        except (SafetensorError, OSError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise KitError(f"{path} is truncated or corrupt ({first}): download it again") from None
    if tied:
        weights.pop("lm_head.weight", None)
    return hf_layout.to_meta(weights, args)


def _hf_tied(folder: Path) -> bool:
    return bool(_read_json(folder / "config.json", "Hugging Face checkpoint").get("tie_word_embeddings", False))


def read_weights(folder: Path, layout: str, args: ModelArgs) -> dict[str, torch.Tensor]:
    """The folder's tensors under Meta's names, memory-mapped (several Meta files merged); a tied model's
    output.weight may be absent."""
    if layout == "meta":
        return _read_meta_weights(folder, args)
    return _read_hf_weights(folder, args, _hf_tied(folder))


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


def layer_numbers(names) -> list[int]:
    """The layer numbers of tensor names like layers.3.attention.wq.weight, sorted."""
    return sorted({int(n.split(".")[1]) for n in names if n.startswith("layers.") and n.split(".")[1].isdigit()})


def missing_layers(names, args: ModelArgs) -> str | None:
    """What is wrong when the config calls for layers beyond those present (before a table of n_layers is built)."""
    present = layer_numbers(names)
    if present and args.n_layers <= present[-1] + 1:
        return None
    if not present:
        return say("formats.checkpoint.no_layers", n_layers=args.n_layers)
    return say("formats.checkpoint.layers_missing", n_layers=args.n_layers, last=present[-1])


def shape_problems(weights: dict[str, torch.Tensor], args: ModelArgs) -> list[str]:
    """Every tensor that is missing, misshapen or not floating point against these args, and layers beyond n_layers.
    Other extra tensors (e.g. rotary buffers) are ignored, as Meta's loader ignores them."""
    missing = missing_layers(weights, args)
    if missing:
        return [missing]
    expected = expected_shapes(args)
    problems = []
    for name, shape in expected.items():
        if name not in weights:
            problems.append(f"no tensor {name}")
        elif tuple(weights[name].shape) != shape:
            problems.append(f"{name} has shape {list(weights[name].shape)} but the config implies {list(shape)}")
        elif not weights[name].is_floating_point():
            problems.append(f"{name} has dtype {weights[name].dtype}, not a floating-point type")
    extra_layers = sorted({int(k.split(".")[1]) for k in weights
                           if k.startswith("layers.") and k.split(".")[1].isdigit()
                           and int(k.split(".")[1]) >= args.n_layers})
    if extra_layers:
        problems.append(f"the weights have layers up to {extra_layers[-1]} but the config says "
                        f"n_layers {args.n_layers}")
    return problems


def check_shapes(weights: dict[str, torch.Tensor], args: ModelArgs, folder: Path) -> None:
    problems = shape_problems(weights, args)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KitError(f"{folder}: {problems[0]}{more}: weights and config come from different models; "
                       "run `llama3-grader checkpoint verify` for the full list")
    problems = dtype_problems(weights)
    if problems:
        raise KitError(f"{folder}: {problems[0]}")


def dtype_problems(weights: Mapping[str, torch.Tensor]) -> list[str]:
    """The floating-point tensors whose dtype is not the one most of them have, each with what to do: a checkpoint
    holds one dtype."""
    counts = {}
    for t in weights.values():
        if t.is_floating_point():
            counts[t.dtype] = counts.get(t.dtype, 0) + 1
    if len(counts) < 2:
        return []
    common = str(max(counts, key=counts.get)).removeprefix("torch.")
    return [say("formats.checkpoint.dtype", name=name, dtype=str(t.dtype).removeprefix("torch."), common=common)
            for name, t in weights.items() if t.is_floating_point() and str(t.dtype).removeprefix("torch.") != common]


NONFINITE_CHUNK = 1 << 24  # elements checked at a time: no boolean copy of a whole matrix


def nonfinite(weights: Mapping[str, torch.Tensor], advance=lambda nbytes: None) -> dict[str, int]:
    """{name: how many of its values are NaN or infinite} for the tensors that hold any; each storage read once, on
    one thread (the pass is memory-bound, and threads that wait for each other on a busy machine made it 40 times
    slower: 2.8 s against 0.07 s for SmolLM2's 269 MB on two busy cores)."""
    found, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, t in unique_tensors(dict(weights)).items():
            flat, bad = t.reshape(-1), 0
            for start in range(0, flat.numel(), NONFINITE_CHUNK):
                chunk = flat[start : start + NONFINITE_CHUNK]
                if t.is_floating_point() and not torch.isfinite(chunk.sum()):  # NaN and inf carry through a sum
                    bad += int(chunk.numel() - torch.isfinite(chunk).sum())  # count them (none if it overflowed)
                advance(chunk.numel() * chunk.element_size())
            if bad:
                found[name] = bad
    finally:
        torch.set_num_threads(threads)
    return found


def tokenizer_path(folder: Path) -> Path:
    """The folder's tokenizer.model (or original/tokenizer.model), else the one shipped in fixtures/."""
    for candidate in (folder / "tokenizer.model", folder / "original" / "tokenizer.model"):
        if candidate.is_file():
            return candidate
    return TOKENIZER


def _check_vocab(args: ModelArgs, tokenizer: Path, folder: Path) -> None:
    _check_not_pointer(tokenizer)
    n_words = tokenizers.n_words(tokenizer)
    if args.vocab_size != n_words:
        raise KitError(f"{folder} has vocab_size {args.vocab_size} but {tokenizer} has {n_words} tokens: "
                       "use the tokenizer.model and params/config file that came with these weights")


def load(folder: str | Path | None = None, dtype: str | torch.dtype | None = None,
         rope_scale_factor: float | str | None = None) -> Checkpoint:
    """Open a checkpoint: args, weights (memory-mapped, in the file's dtype unless dtype says otherwise), tokenizer
    path.

    rope_scale_factor (or LLAMA3_ROPE_SCALE_FACTOR) overrides the RoPE scale factor of a Llama 3.1/3.2 model: by default
    32 for Meta-layout 3.2 1B/3B, 8 for other scaled Meta models, and config.json's factor for Hugging Face's layout.
    """
    if dtype is not None:
        dtype = parse_dtype(dtype)
    folder = resolve(folder)
    layout = detect_layout(folder)
    args = read_args(folder, layout, rope_scale_factor)
    tokenizer = tokenizer_path(folder)
    _check_vocab(args, tokenizer, folder)
    weights = read_weights(folder, layout, args)
    weights.setdefault("output.weight", weights.get("tok_embeddings.weight"))  # tied embeddings
    if weights["output.weight"] is None:
        del weights["output.weight"]
    check_shapes(weights, args, folder)
    weights = {k: weights[k] for k in expected_shapes(args)}
    if dtype is not None:
        weights = cast(weights, dtype)
    return Checkpoint(folder, layout, args, weights, tokenizer)


def check(folder: str | Path | None = None,
          rope_scale_factor: float | str | None = None) -> tuple[ModelArgs, torch.dtype]:
    """(args, dtype) of a checkpoint after every check load makes (a model in several files is checked file by file,
    never merged) and every value read once: what a process that starts ranks checks before they load their shares."""
    folder = resolve(folder)
    layout = detect_layout(folder)
    if layout != "meta" or len(meta_shards(folder)) < 2:
        ck = load(folder, rope_scale_factor=rope_scale_factor)
        page_in(ck.weights, folder)
        return ck.args, ck.dtype
    args = read_args(folder, layout, rope_scale_factor)
    _check_vocab(args, tokenizer_path(folder), folder)
    files = read_shards(folder, args)
    page_in({f"consolidated.{i:02d}.pth: {name}": t for i, f in enumerate(files) for name, t in f.items()}, folder)
    return args, files[0]["tok_embeddings.weight"].dtype


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise KitError(f"unsupported dtype {dtype}: use one of {', '.join(DTYPES)}")
        return dtype
    name = DTYPE_ALIASES.get(str(dtype).lower().removeprefix("torch."), str(dtype).lower().removeprefix("torch."))
    if name not in DTYPES:
        raise KitError(f"unknown dtype {metadata.shown(dtype)}: use --dtype {' or --dtype '.join(DTYPES)}")
    return DTYPES[name]


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


class CastOnRead(Mapping):
    """Weights in another dtype without a copy of the model: each tensor is cast when it is read, and the
    checkpoint's own (bf16, memory-mapped) stays as it is. weights["layers.0.attention.wq.weight"] is float32.
    Cast tensors are kept while they total at most KEEP_BYTES, so a small model is cast once and an 8B one
    stays within a few GB of its checkpoint."""

    KEEP_BYTES = 1 << 30

    def __init__(self, weights: Mapping[str, torch.Tensor], dtype: torch.dtype):
        self._weights, self.dtype = weights, dtype
        self.kept: dict[str, torch.Tensor] = {}  # the cast tensors held, by name
        self._kept_bytes = 0

    def __getitem__(self, name: str) -> torch.Tensor:
        if name in self.kept:
            return self.kept[name]
        with torch.inference_mode(False):  # a tensor kept for later calls must not be an inference tensor
            cast = self._weights[name].to(self.dtype)
        nbytes = cast.numel() * cast.element_size()
        if self._kept_bytes + nbytes <= self.KEEP_BYTES:
            self.kept[name], self._kept_bytes = cast, self._kept_bytes + nbytes
        return cast

    def __iter__(self) -> Iterator[str]:
        return iter(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def __repr__(self) -> str:
        return f"<{len(self)} weights, cast to {self.dtype} when read>"


def unique_tensors(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One name per storage: a tied output.weight is left out."""
    seen, out = set(), {}
    for name, t in weights.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            out[name] = t
    return out


def page_in(weights: dict[str, torch.Tensor], folder: Path | str = "") -> None:
    """Read every value of memory-mapped weights once, with a progress bar, so the first forward is not the one that
    waits; a KitError for values that are NaN or infinite (a damaged file), which no implementation can run."""
    total = sum(t.numel() * t.element_size() for t in unique_tensors(weights).values())
    with bar("reading weights", total, bytes_=True) as progress:
        bad = nonfinite(weights, lambda nbytes: progress.advance(progress.task_ids[0], nbytes))
    if bad:
        name, n = next(iter(bad.items()))
        raise KitError(say("formats.checkpoint.not_finite", folder=folder or "the checkpoint", name=name, n=n,
                           tensors=len(bad)))
