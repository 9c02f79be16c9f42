"""Golden files: build them from solutions/, write them (safetensors + manifest.json), read and verify them."""

import functools
import hashlib
import importlib
import json
import os
import platform
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import specs
from .calls import Call, Golden, GradeFailure, Ref, differences
from .checking import run_call
from .compare import TOLERANCES
from ..errors import KitError
from ..files import make_folder
from ..i18n import say
from ..paths import ROOT
from ..progress import track

MANIFEST = "manifest.json"
MISTAKE_ELEMENTS = 1 << 16  # a mistake's larger outputs (a vocabulary of logits) are not kept: the smaller ones name it


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.cache
def builder_version() -> str:
    """A hash of the code that decides what goldens hold (solutions/, the specs, and the modules that run and compare
    golden calls): goldens built in the cache for a real checkpoint are kept per version, so a changed kit builds new
    ones."""
    h = hashlib.sha256()
    engine = Path(__file__).parent
    code = [engine / f"{m}.py" for m in ("calls", "checking", "compare", "goldens")]
    for path in sorted((ROOT / "solutions").glob("*.py")) + sorted((ROOT / "grader" / "specs").glob("*.py")) + code:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def kernels() -> str:
    """A fingerprint of this machine's CPU kernels: its architecture and vector width, and the bits of a few float32 and
    bfloat16 operations the reference uses, on fixed inputs. Goldens rebuild bit for bit only where it is the builder's
    (AVX2 and AVX-512, x86 and Arm, sum in different orders). One thread, as build runs."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 96, generator=g), torch.randn(96, 160, generator=g)  # [7, 96], [96, 160]
    with _one_thread():
        outputs = [a @ b, a.bfloat16() @ b.bfloat16(), torch.softmax(a, -1), a.exp(), torch.rsqrt(a.pow(2).mean(-1)),
                   torch.nn.functional.silu(a), a.cos(), a.sin()]
    h = hashlib.sha256(f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}".encode())
    for t in outputs:
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def build_into_cache(model) -> None:
    """Build model's goldens into model.golden_dir atomically: in a folder beside it, renamed when complete, so another
    process grading at the same time never reads half of them."""
    final = model.golden_dir
    make_folder(final.parent, cache=True)
    with tempfile.TemporaryDirectory(prefix=f".{final.name}.", dir=final.parent) as tmp:
        build(model, Path(tmp) / "goldens")
        try:
            os.rename(Path(tmp) / "goldens", final)
        except OSError:
            if not (final / MANIFEST).is_file():  # not merely another process finishing first
                raise


def checkpoint_sha256(weights: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].contiguous()
        h.update(f"{name}:{t.dtype}:{list(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _encode(value, key: str, tensors: dict[str, torch.Tensor]):
    """JSON for one value; tensors go to the file under key."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().contiguous().clone()  # a mistake's view is stored as its values
        return {"tensor": key}
    if isinstance(value, Ref):
        return {"ref": value.kind, "name": value.name, "dtype": value.dtype}
    return {"value": value}


def _decode(spec: dict, tensors: dict[str, torch.Tensor]):
    if "tensor" in spec:
        return tensors[spec["tensor"]]
    if "ref" in spec:
        return Ref(spec["ref"], spec["name"], spec["dtype"])
    return spec["value"]


def _resolve(kwargs: dict, model) -> dict:
    return {k: model.resolve(v) if isinstance(v, Ref) else v for k, v in kwargs.items()}


def _label(call: Call, model) -> str:
    return f"{call.function} ({model.name}, {call.case})"


def build_module(model, module: str, calls: list[Call]) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Run the reference and every mistake on each call; the tensors and the JSON spec of one golden file."""
    reference = importlib.import_module(f"solutions.{module}")
    tensors: dict[str, torch.Tensor] = {}
    written = []
    for call in calls:
        prefix = f"{call.function}/{call.case}"
        kwargs = _resolve(call.kwargs, model)
        expected = run_call(getattr(reference, call.function), call, kwargs, _label(call, model))
        spec = {
            "function": call.function, "case": call.case, "outputs": list(call.outputs), "tolerance": call.tolerance,
            "reduce": call.reduce, "driver": call.driver,
            "kwargs": {k: _encode(v, f"{prefix}/in/{k}", tensors) for k, v in call.kwargs.items()},
            "expected": {k: _encode(v, f"{prefix}/out/{k}", tensors) for k, v in expected.items()},
            "mistakes": {},
        }
        for mistake in specs.mistakes_of(module, call.function):
            try:
                got = run_call(mistake.variant, call, kwargs, _label(call, model))
            except GradeFailure:
                continue  # the call itself says what is wrong (e.g. a cache fed the wrong shape)
            if differences(got, expected, call.tolerance):  # only mistakes this case can tell apart
                kept = {k: v for k, v in got.items()
                        if not isinstance(v, torch.Tensor) or v.numel() <= MISTAKE_ELEMENTS}
                where = f"{prefix}/mistake/{mistake.id}"
                spec["mistakes"][mistake.id] = {k: _encode(v, f"{where}/{k}", tensors) for k, v in kept.items()}
        written.append(spec)
    return tensors, written


def build(model, out_dir: Path, prompts: dict[str, str] | None = None) -> dict:
    """Write every exercise's golden file for model into out_dir, then manifest.json; returns the manifest.
    One torch thread, so that rebuilding gives the same bits on any machine (some reductions are split by thread)."""
    with _one_thread():
        return _build(model, out_dir, prompts or specs.PROMPTS)


@contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _build(model, out_dir: Path, prompts: dict[str, str]) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    all_calls = specs.calls(model, prompts)
    files = {}
    for module in track(sorted(all_calls), f"building goldens for {model.name}"):
        tensors, written = build_module(model, module, all_calls[module])
        path = out_dir / f"{module}.safetensors"
        save_file(tensors, path, metadata={"calls": json.dumps(written)})
        files[path.name] = {"sha256": _sha256_file(path), "calls": len(written),
                            "tolerances": sorted({s["tolerance"] for s in written})}
    ck = model.checkpoint
    manifest = {
        "model": model.name,
        "checkpoint": {"folder": ck.folder.name, "layout": ck.layout, "dtype": str(ck.dtype).removeprefix("torch."),
                       "sha256": checkpoint_sha256(ck.weights)},
        "torch": torch.__version__,
        "kernels": kernels(),
        "builder": builder_version(),
        "prompts": prompts,
        "files": files,
        "tolerances": {name: {"atol": t.atol, "rtol": t.rtol, "reason": t.reason("en")}
                       for name, t in TOLERANCES.items()},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def stale(golden_dir: Path) -> bool:
    """Whether a golden folder built on first use must be built (again): no manifest, or no file for an exercise
    that solutions/ has (the kit gained exercises since)."""
    path = golden_dir / MANIFEST
    if not path.is_file():
        return True
    try:
        files = json.loads(path.read_text())["files"]
    except (ValueError, KeyError):
        return True
    return any(f"{p.stem}.safetensors" not in files for p in (ROOT / "solutions").glob("ex[0-9][0-9]_*.py"))


def read(golden_dir: Path, module: str) -> list[Golden]:
    """The golden calls of one exercise module."""
    path = golden_dir / f"{module}.safetensors"
    if not path.is_file():
        raise KitError(say("goldens.missing", path=path))
    try:
        tensors = load_file(path)
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            entries = json.loads(json.loads(f.read(header_len))["__metadata__"]["calls"])
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise KitError(say("goldens.corrupt", path=path, why=str(e).splitlines()[0], folder=path.parent)) from None
    goldens = []
    for s in entries:
        call = Call(module, s["function"], s["case"], {k: _decode(v, tensors) for k, v in s["kwargs"].items()},
                    tuple(s["outputs"]), s["tolerance"], s["reduce"], s["driver"])
        expected = {k: _decode(v, tensors) for k, v in s["expected"].items()}
        wrong = {mid: {k: _decode(v, tensors) for k, v in outs.items()} for mid, outs in s["mistakes"].items()}
        goldens.append(Golden(call, expected, wrong))
    return goldens


def _fix(golden_dir: Path, path: Path) -> str:
    """What to do about a damaged file of a golden folder: git restores the kit's own, the next grading rebuilds the
    cache's."""
    if golden_dir.resolve().is_relative_to(ROOT):
        return say("goldens.restore", path=path.resolve().relative_to(ROOT))
    return say("goldens.rebuild", folder=golden_dir)


def verify(golden_dir: Path, model=None) -> list[str]:
    """Problems with a golden folder, each saying what to do: files missing, altered, unreadable or unknown to the
    manifest; the checkpoint changed. Empty if fine."""
    manifest_path = golden_dir / MANIFEST
    if not manifest_path.is_file():
        return [say("goldens.problem_missing", path=manifest_path, fix=_fix(golden_dir, manifest_path))]
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return [say("goldens.manifest_corrupt", path=manifest_path, why=why, fix=_fix(golden_dir, manifest_path))]
    problems = []
    for name, sha256 in entries.items():
        path = golden_dir / name
        if not path.is_file():
            problems.append(say("goldens.problem_missing", path=path, fix=_fix(golden_dir, path)))
        elif _sha256_file(path) != sha256:
            problems.append(say("goldens.problem_altered", path=path, fix=_fix(golden_dir, path)))
        else:
            try:
                read(golden_dir, name.removesuffix(".safetensors"))
            except KitError as e:
                problems.append(str(e))
    for path in sorted(golden_dir.glob("*.safetensors")):
        if path.name not in entries:
            problems.append(say("goldens.problem_unknown", path=path, folder=golden_dir))
    if model is not None and checkpoint_sha256(model.checkpoint.weights) != manifest["checkpoint"]["sha256"]:
        problems.append(f"{model.folder} is not the checkpoint these goldens were built from (tensor sha256 differs)")
    return problems
