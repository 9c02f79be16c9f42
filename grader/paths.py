"""Where the kit's files live."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TOKENIZER = FIXTURES / "tokenizer" / "tokenizer.model"
MODELS = FIXTURES / "models"
GOLDENS = FIXTURES / "goldens"
TINY_MODELS = ("tiny-llama3", "tiny-llama3.2")
