"""The stubs as shipped, kept in grader/learner/stubs.zip: what `llama3-grader reset` restores, with or without git
history.

Maintainers: after changing a stub in exercises/, run `python -m grader.learner.pristine` and commit stubs.zip with it
(tests/test_cli_reset.py fails while the zip and the committed stubs differ). The zip is byte-for-byte
reproducible: the same stubs always give the same file."""

import zipfile
from pathlib import Path

from ..errors import KitError
from ..paths import ROOT

ZIP = Path(__file__).with_name("stubs.zip")


def stub_files(folder: Path = ROOT / "exercises") -> list[Path]:
    """The learner's files: exNN_<topic>.py, not the graded tests."""
    return sorted(folder.glob("ex[0-9][0-9]_*.py"))


def read(name: str) -> bytes:
    """The pristine text of a stub, e.g. read("ex04_rms_norm.py")."""
    try:
        with zipfile.ZipFile(ZIP) as z:
            return z.read(name)
    except (OSError, KeyError, zipfile.BadZipFile):
        raise KitError(f"no pristine copy of {name} in {ZIP}: reinstall the kit "
                       "(or `git checkout -- grader/learner/stubs.zip`)") from None


def build(folder: Path = ROOT / "exercises", out: Path = ZIP) -> list[str]:
    """Write out from the stubs in folder; returns their names."""
    names = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in stub_files(folder):
            info = zipfile.ZipInfo(path.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())
            names.append(path.name)
    return names


if __name__ == "__main__":
    written = build()
    print(f"wrote {len(written)} stubs to {ZIP.relative_to(ROOT)}")
