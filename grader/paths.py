"""Where the kit's files live, and its cache."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TOKENIZER = FIXTURES / "tokenizer" / "tokenizer.model"
MODELS = FIXTURES / "models"
GOLDENS = FIXTURES / "goldens"
TINY_MODELS = ("tiny-llama3", "tiny-llama3.2")


def cache_dir() -> Path:
    """The kit's cache (fetched models, goldens of real checkpoints, verify's outcomes): LLAMA3_KIT_CACHE, else
    ~/.cache/llama3-kit."""
    return Path(os.environ.get("LLAMA3_KIT_CACHE") or Path.home() / ".cache" / "llama3-kit")
