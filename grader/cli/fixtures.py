"""`llama3-grader fixtures build|verify`: write goldens from solutions/, check them against their manifest."""

from pathlib import Path

from ..paths import GOLDENS, ROOT, TINY_MODELS


def register(sub) -> None:
    p = sub.add_parser("fixtures", help="build or verify the golden tensors (maintainers)")
    verbs = p.add_subparsers(title="fixtures verbs", metavar="build|verify", required=True)
    build = verbs.add_parser("build", help="run solutions/ on a checkpoint and write its goldens")
    build.add_argument("--checkpoint", required=True, help="checkpoint folder (Meta or Hugging Face layout)")
    build.add_argument("--name", required=True, help="goldens go to fixtures/goldens/NAME (or --out)")
    build.add_argument("--out", type=Path, help="write here instead of fixtures/goldens/NAME")
    build.set_defaults(run=run_build)
    verify = verbs.add_parser("verify", help="check every golden file against manifest.json")
    verify.add_argument("folders", nargs="*", type=Path, help="golden folders (default: all of fixtures/goldens)")
    verify.set_defaults(run=run_verify)


def run_build(args) -> int:
    from ..engine import goldens, models

    out = args.out or GOLDENS / args.name
    manifest = goldens.build(models.Model(args.name, Path(args.checkpoint), out), out)
    n_calls = sum(f["calls"] for f in manifest["files"].values())
    print(f"wrote {len(manifest['files'])} golden files ({n_calls} calls) and manifest.json to {_show(out)}")
    return 0


def run_verify(args) -> int:
    from ..engine import goldens, models
    from ..errors import KitError

    folders = args.folders or sorted(p for p in GOLDENS.iterdir() if p.is_dir())
    if not folders:
        raise KitError(f"no golden folders under {GOLDENS}: restore fixtures/ with `git checkout -- fixtures`")
    failed = 0
    for folder in folders:
        model = (models.tiny(folder.name)
                 if folder.name in TINY_MODELS and folder.resolve() == (GOLDENS / folder.name).resolve() else None)
        problems = goldens.verify(folder, model)
        for problem in problems:
            print(f"FAIL {problem}")
        if not problems:
            print(f"ok   {_show(folder)}")
        failed += bool(problems)
    return 1 if failed else 0


def _show(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
