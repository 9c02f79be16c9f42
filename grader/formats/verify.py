"""`llama3-grader checkpoint verify`: are these Meta's files, intact, and do the tensors fit the params?

1. md5 (and sha256) of every file, streamed in 8 MiB chunks with a progress bar: a 16 GB file is never in memory.
2. Against the folder's checklist.chk when there is one (Meta ships it), and against the releases the kit knows
   (grader/formats/checklists.toml, from Meta's checklists and published hashes): "genuine Meta-Llama-3-8B", or exactly
   which file differs from what.
3. Tensor names and shapes against params.json / config.json (memory-mapped: nothing is read but the headers).

The outcome is remembered per folder (a small JSON file in the kit's cache folder); last_result(folder) returns it
while the files are unchanged, for the scoreboard's "42" line.
"""

import concurrent.futures
import datetime
import hashlib
import json
import math
from pathlib import Path

from ..errors import KitError
from ..files import write_atomically
from ..i18n import say

CHUNK = 8 << 20
CACHE_FILE = "verify.json"
WEIGHT_SUFFIXES = (".pth", ".safetensors")

GENUINE, MATCHES, DIFFERS, UNKNOWN = "genuine", "matches checklist", "differs", "not identified"


def releases() -> dict[str, dict]:
    """The known releases: name -> {"official", "source", "files": {file name: {"md5"?, "sha256"?}}}."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    raw = tomllib.loads((Path(__file__).with_name("checklists.toml")).read_text())["releases"]
    return {name: {"official": r["official"], "source": r["source"],
                   "files": {k: v for k, v in r.items() if isinstance(v, dict)}} for name, r in raw.items()}


def parse_checklist(path: Path) -> dict[str, str]:
    """checklist.chk ("md5  file name" per line, as md5sum writes it) -> {file name: md5}."""
    entries = {}
    for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 32 or any(c not in "0123456789abcdefABCDEF" for c in parts[0]):
            raise KitError(f"{path} line {line_no} is not 'md5  file name': download checklist.chk again "
                           "(or delete it)")
        entries[parts[1].strip().lstrip("*").removeprefix("./")] = parts[0].lower()
    return entries


def files_to_check(folder: Path, layout: str, checklist: dict[str, str] | None) -> list[str]:
    """Paths (relative to folder) of the files to hash: the checklist's, the weights, params/config, the tokenizer."""
    names = set(checklist or {})
    candidates = ["params.json", "tokenizer.model", "config.json", "model.safetensors.index.json",
                  "original/params.json", "original/tokenizer.model"]
    names |= {c for c in candidates if (folder / c).is_file()}
    for pattern in ("consolidated.*.pth", "original/consolidated.*.pth", "model*.safetensors"):
        names |= {str(p.relative_to(folder)) for p in folder.glob(pattern) if p.is_file()}
    return sorted(names, key=lambda n: (not n.endswith(WEIGHT_SUFFIXES), n))


def hash_files(folder: Path, names: list[str], show_progress: bool = True) -> dict[str, dict]:
    """{name: {"bytes", "md5", "sha256"}} for the files that exist; md5 and sha256 run side by side on two threads."""
    from ..progress import bar

    present = [n for n in names if (folder / n).is_file()]
    total = sum((folder / n).stat().st_size for n in present)
    out = {}
    with bar("hashing", total, bytes_=True) as progress, concurrent.futures.ThreadPoolExecutor(1) as pool:
        if not show_progress:
            progress.stop()
        for name in present:
            md5, sha = hashlib.md5(), hashlib.sha256()
            size = 0
            with open(folder / name, "rb") as f:
                while chunk := f.read(CHUNK):
                    job = pool.submit(md5.update, chunk)  # hashlib releases the GIL on large buffers
                    sha.update(chunk)
                    job.result()
                    size += len(chunk)
                    progress.advance(progress.task_ids[0], len(chunk))
            out[name] = {"bytes": size, "md5": md5.hexdigest(), "sha256": sha.hexdigest()}
    return out


def _meta_name(name: str) -> str:
    """The name a file has in Meta's release: original/params.json -> params.json."""
    return name.removeprefix("original/")


def identify(hashes: dict[str, dict]) -> dict:
    """Compare the hashes with every known release. Returns {"model", "official", "source"} for a release whose
    weights match with no file that differs, else {"model": None, "near": [...]} naming releases that match in part."""
    by_meta_name = {}
    for name, h in hashes.items():
        by_meta_name.setdefault(_meta_name(name), h)  # the top-level file first when both exist
    best, near = None, []
    for release, info in releases().items():
        matched, differs = [], []
        for fname, known in info["files"].items():
            h = by_meta_name.get(fname)
            if h is None:
                continue
            algos = [a for a in ("md5", "sha256") if a in known]
            if all(h[a] == known[a] for a in algos):
                matched.append(fname)
            else:
                a = algos[0]
                differs.append({"file": fname, "algo": a, "expected": known[a], "got": h[a]})
        weights = [f for f in info["files"] if f.endswith(".pth")]
        weights_match = bool(weights) and all(f in matched for f in weights)
        if weights_match and not differs:
            best = {"model": release, "official": info["official"], "source": info["source"], "files": matched}
        elif matched and (set(matched) - {"tokenizer.model"}):
            near.append({"model": release, "matched": matched, "differs": differs})
    if best:
        return best
    return {"model": None, "near": near}


def _fingerprint(folder: Path, names: list[str]) -> list:
    out = []
    for name in sorted(names):
        p = folder / name
        if p.is_file():
            st = p.stat()
            out.append([name, st.st_size, st.st_mtime_ns])
    return out


def verify(folder: str | Path | None = None, show_progress: bool = True, rope_scale_factor=None,
           remember: bool = True) -> dict:
    """Check a checkpoint folder; the outcome as a dict (see report() for how it reads), remembered for last_result."""
    from . import checkpoint

    folder = checkpoint.resolve(folder)
    layout = checkpoint.detect_layout(folder)
    chk_path = next((p for p in (folder / "checklist.chk", folder / "original" / "checklist.chk") if p.is_file()), None)
    checklist = parse_checklist(chk_path) if chk_path else None
    if checklist is not None and chk_path.parent != folder:  # original/checklist.chk names files in original/
        checklist = {f"original/{k}": v for k, v in checklist.items()}
    names = files_to_check(folder, layout, checklist)
    hashes = hash_files(folder, names, show_progress)

    files, problems = [], []
    for name in names:
        h = hashes.get(name)
        expected = (checklist or {}).get(name)
        entry = {"name": name, "bytes": h["bytes"] if h else None, "md5": h["md5"] if h else None,
                 "sha256": h["sha256"] if h else None, "checklist_md5": expected, "ok": None}
        if h is None:
            entry["ok"] = False
            problems.append(f"{name} is listed in {chk_path.name} but missing: download it")
        elif expected is None and _is_extra_shard(name, checklist):
            entry["ok"], entry["extra"] = False, True
            problems.append(f"{name} is not in {chk_path.name}, which lists {_n_shards(checklist)} consolidated.*.pth "
                            f"shards: a file from another download? move it out of {folder}")
        elif expected is not None:
            entry["ok"] = h["md5"] == expected
            if not entry["ok"]:
                problems.append(f"{name} has md5 {h['md5']} but {chk_path.name} says {expected}: download it again")
        files.append(entry)

    known = identify(hashes)
    model = known.get("model")
    checklist_ok = checklist is not None and all(e["ok"] is not False for e in files)  # files it does not list are None
    partial, notes = [], []
    if model is None:
        for near in known["near"]:
            matched = ", ".join(near["matched"])
            verb = "is" if len(near["matched"]) == 1 else "are"
            if not near["differs"]:
                notes.append(f"{matched} {verb} {near['model']}'s")
            for d in near["differs"]:
                partial.append(f"{matched} {verb} {near['model']}'s, but {d['file']} has {d['algo']} {d['got']} "
                               f"where {near['model']}'s has {d['expected']}")
    if checklist_ok:
        # the folder's own checklist vouches for the files: weights that are not Meta's are converted or fine-tuned
        notes += [f"{p} (converted or fine-tuned weights?)" for p in partial]
    else:
        problems += partial  # with Meta's params and tokenizer, other weights are most likely a broken download

    shapes = _check_shapes(folder, layout, rope_scale_factor, show_progress)
    problems += [f"shapes: {p}" for p in shapes["problems"]]
    problems += [f"values: {p}" for p in shapes["values"]]

    failed = any(e["ok"] is False for e in files) or bool(shapes["problems"] or shapes["values"])
    if failed or (partial and not checklist_ok):
        verdict = DIFFERS
    elif model is not None:
        verdict = GENUINE
    elif checklist is not None:
        verdict = MATCHES
    else:
        verdict = UNKNOWN
    result = {
        "folder": str(folder.resolve()),
        "layout": layout,
        "verdict": verdict,
        "ok": verdict in (GENUINE, MATCHES, UNKNOWN) and not problems,
        "model": model,
        "official": known.get("official"),
        "source": known.get("source"),
        "checklist": str(chk_path.relative_to(folder)) if chk_path else None,
        "files": files,
        "shapes": shapes,
        "problems": problems,
        "notes": notes,
        "summary": "",
        "checked_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": _fingerprint(folder, names),
    }
    result["summary"] = _summary(result)
    if remember:
        _remember(result)
    return result


def _is_extra_shard(name: str, checklist: dict[str, str] | None) -> bool:
    """A Meta weight shard that the checklist, which lists Meta weight shards, does not."""
    return bool(checklist) and Path(name).match("consolidated.*.pth") and _n_shards(checklist) > 0


def _n_shards(checklist: dict[str, str]) -> int:
    return sum(Path(n).match("consolidated.*.pth") for n in checklist)


def _values(weights: dict, show_progress: bool) -> list[str]:
    """A problem for every tensor that holds values that are NaN or infinite (every value is read)."""
    from . import checkpoint
    from ..progress import bar

    total = sum(t.numel() * t.element_size() for t in checkpoint.unique_tensors(weights).values())
    with bar("checking values", total, bytes_=True) as progress:
        if not show_progress:
            progress.stop()
        bad = checkpoint.nonfinite(weights, lambda nbytes: progress.advance(progress.task_ids[0], nbytes))
    return [say("formats.verify.not_finite", name=name, n=n) for name, n in bad.items()]


def _check_shard_shapes(folder: Path, rope_scale_factor, show_progress: bool) -> dict:
    """The files as a whole (count, names, dtype), then every tensor of every shard against its share of the model
    params.json describes, then their values."""
    from . import checkpoint, shards

    try:
        paths = checkpoint.meta_shards(folder)
        args = checkpoint.read_args(folder, "meta", rope_scale_factor)
        files = [checkpoint.load_pth(p) for p in paths]
    except KitError as e:
        return {"checked": True, "problems": [str(e)], "values": [], "note": ""}
    names = [p.name for p in paths]
    problems = checkpoint.shard_file_problems(paths, files, args)
    gaps = sorted(set(f"consolidated.{i:02d}.pth" for i in range(len(paths))) - set(names))
    if gaps:
        problems.insert(0, f"the shards are not numbered consolidated.00.pth to consolidated.{len(paths) - 1:02d}.pth: "
                           f"{gaps[0]} is missing")
    counts = shards.rank_counts(args, len(paths))
    if not problems and len(paths) not in counts:
        problems.append(f"{len(paths)} shards do not split this model evenly (it splits over "
                        f"{', '.join(map(str, counts))})")
    problems = problems or checkpoint.shard_problems(files, args, names)
    if problems:
        return {"checked": True, "problems": problems, "values": [], "note": ""}
    values = _values({f"{n}: {k}": t for n, f in zip(names, files) for k, t in f.items()}, show_progress)
    tensors = len(checkpoint.expected_shapes(args))
    n_params = sum(math.prod(s) for n, s in checkpoint.expected_shapes(args).items()
                   if n != "output.weight" or "output.weight" in files[0])
    return {"checked": True, "problems": problems, "values": values, "tensors": tensors, "parameters": n_params,
            "note": f"{len(paths)} shards of {tensors} tensors each, {n_params / 1e9:.2f} B parameters, "
                    "match params.json"}


def _check_shapes(folder: Path, layout: str, rope_scale_factor, show_progress: bool = False) -> dict:
    """Names, shapes and dtypes of the tensors against the params (memory-mapped: only headers are read), then their
    values."""
    from . import checkpoint, tokenizer as tokenizers

    if layout == "meta" and len(list(folder.glob("consolidated.*.pth"))) > 1:
        return _check_shard_shapes(folder, rope_scale_factor, show_progress)
    try:
        args = checkpoint.read_args(folder, layout, rope_scale_factor)
        weights = checkpoint.read_weights(folder, layout, args)
        weights.setdefault("output.weight", weights.get("tok_embeddings.weight"))
        weights = {k: v for k, v in weights.items() if v is not None}
        problems = checkpoint.shape_problems(weights, args)
        tokenizer = checkpoint.tokenizer_path(folder)
        n_words = tokenizers.n_words(tokenizer)
        if n_words != args.vocab_size:
            problems.append(f"vocab_size {args.vocab_size} but {tokenizer.name} has {n_words} tokens")
        problems += checkpoint.dtype_problems(weights)
    except KitError as e:
        return {"checked": True, "problems": [str(e)], "values": [], "note": ""}
    if problems:
        return {"checked": True, "problems": problems, "values": [], "note": ""}
    values = _values(weights, show_progress)
    expected = checkpoint.expected_shapes(args)
    n_params = sum(t.numel()
                   for t in checkpoint.unique_tensors({k: weights[k] for k in expected if k in weights}).values())
    params_file = "params.json" if layout == "meta" else "config.json"
    return {"checked": True, "problems": problems, "values": values, "tensors": len(expected), "parameters": n_params,
            "note": f"{len(expected)} tensors, {n_params / 1e9:.2f} B parameters, match {params_file}"}


def _summary(r: dict) -> str:
    if r["verdict"] == GENUINE:
        who = f"genuine {r['model']}"
        if r["official"]:
            return f"{who}: every file matches Meta's checklist"
        return f"{who}: the weights match its published checksums ({r['source']})"
    if r["verdict"] == MATCHES:
        return (f"every file matches {r['checklist']}, and the shapes fit; not one of the Meta releases the kit knows "
                "(see grader/formats/checklists.toml)")
    if r["verdict"] == DIFFERS:
        return f"{len(r['problems'])} problem(s): {r['problems'][0]}"
    return ("no checklist.chk here, and the files match none of the Meta releases the kit knows: intact or not cannot "
            "be told (random weights from `checkpoint make`, a fine-tune, or a release without published checksums); "
            "shapes fit")


def report(r: dict) -> str:
    """The outcome as lines a person reads."""
    gb = 1e9
    total = sum(e["bytes"] or 0 for e in r["files"])
    lines = [f"{r['folder']} ({'Meta' if r['layout'] == 'meta' else 'Hugging Face'} layout, "
             f"{len(r['files'])} files, {total / gb:.2f} GB)"]
    for e in r["files"]:
        status = "EXTRA" if e.get("extra") else {True: "ok", False: "DIFFERS", None: "  "}[e["ok"]]
        if e["md5"] is None:
            status = "MISSING"
        against = f"= {r['checklist']}" if e["ok"] else (
            f"!= {r['checklist']} ({e['checklist_md5']})" if e["ok"] is False and e["md5"] else "")
        if e.get("extra"):
            against = f"not in {r['checklist']}"
        md5 = e["md5"] or "-" * 32
        lines.append(f"  {status:8} {e['name']:32} md5 {md5} {against}".rstrip())
    s = r["shapes"]
    if s.get("checked"):
        lines.append(f"  {'ok' if not s['problems'] else 'DIFFERS':8} shapes: "
                     + (s["note"] or "; ".join(s["problems"][:3])))
        if not s["problems"]:
            finite = say("formats.verify.all_finite")
            values = "; ".join(s["values"][:3]) or finite
            lines.append(f"  {'ok' if not s['values'] else 'DIFFERS':8} values: {values}")
    else:
        lines.append(f"  {'':8} shapes: {s['note']}")
    head = {GENUINE: "GENUINE", MATCHES: "OK", DIFFERS: "DIFFERS", UNKNOWN: "UNVERIFIED"}[r["verdict"]]
    lines.append(f"{head}: {r['summary']}")
    for p in r["problems"][1:]:
        lines.append(f"  also: {p}")
    for n in r.get("notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)


def _cache_path() -> Path:
    from ..paths import cache_dir

    return cache_dir() / CACHE_FILE


def _load_cache() -> dict:
    try:
        data = json.loads(_cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(result: dict) -> None:
    """Store the outcome under the folder's path, atomically (a crash leaves the old file whole)."""
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _load_cache()
        data[result["folder"]] = result
        write_atomically(path, json.dumps(data, indent=1).encode())
    except OSError:
        pass  # a read-only cache folder costs the scoreboard its memory, nothing more


def last_result(folder: str | Path) -> dict | None:
    """The last verify outcome for this folder, or None if it was never verified or its files changed since.
    Keys: verdict ("genuine", "matches checklist", "differs", "not identified"), ok, model, summary, problems,
    checked_at, ..."""
    path = Path(folder).expanduser()
    result = _load_cache().get(str(path.resolve()))
    if not isinstance(result, dict) or "fingerprint" not in result:
        return None
    names = [entry[0] for entry in result["fingerprint"]]
    if _fingerprint(path, names) != result["fingerprint"]:
        return None
    return result
