"""The inputs several exercises are graded on: the prompts, texts for the tokenizer, released params.json files, and
the sizes of what is kept of large outputs."""

PROMPTS = {
    "prompt42": "the answer to the ultimate question of life, the universe, and everything is ",
    "mixed": ('Llama 3 说："你好，世界！" Then in Python: '
              "def answer(): return 6 * 7  # 生命、宇宙以及一切的答案"),
}
# Texts the tokenizer is graded on besides the prompts: each is a rule of Llama 3's split pattern.
TOKENIZER_TEXTS = {
    "numbers": "In 1969, 12345 people paid $3,141.59 for 2048 tickets; 1000000 more by 20240101.",
    "whitespace": "a  b   c\t\td\n\n\ne \r\n f    \n  end  ",
    "contractions": "I'LL say it's THEY'RE we've You'D she'S they'll I'm",
    "punctuation": "Wait...!!! (yes?) --- [ok] {x: 1}; a->b => c::d ;;\n!!",
    "unicode": "🦙 Llama 3 🚀 👍🏽 é ñ ü 日本語 한국어 Ελληνικά",
}
SPECIAL_TEXT = "<|begin_of_text|>user said <|eot_id|> in plain text"
# Published token ids of the 42 prompt (docs/facts.md §0).
PROMPT42_IDS = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220]
# params.json of released models (docs/facts.md §1.1), for the calls that need no checkpoint.
RELEASED = {
    "llama3-8b": {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
                  "multiple_of": 1024, "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
    "llama3-70b": {"dim": 8192, "n_layers": 80, "n_heads": 64, "n_kv_heads": 8, "vocab_size": 128256,
                   "multiple_of": 4096, "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
    "llama3.1-8b": {"dim": 4096, "ffn_dim_multiplier": 1.3, "multiple_of": 1024, "n_heads": 32, "n_kv_heads": 8,
                    "n_layers": 32, "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True,
                    "vocab_size": 128256},
    "llama3.1-405b": {"dim": 16384, "n_layers": 126, "n_heads": 128, "n_kv_heads": 8, "vocab_size": 128256,
                      "multiple_of": 4096, "ffn_dim_multiplier": 1.2, "norm_eps": 1e-05, "rope_theta": 500000.0,
                      "use_scaled_rope": True},
    "llama3.2-1b": {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
                    "ffn_dim_multiplier": 1.5, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
                    "use_scaled_rope": True},
    "llama3.2-3b": {"dim": 3072, "n_layers": 28, "n_heads": 24, "n_kv_heads": 8, "vocab_size": 128256,
                    "ffn_dim_multiplier": 1.0, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
                    "use_scaled_rope": True},
}
GENERATION_PROMPT_TOKENS = 64  # longer prompts are graded through forward; generating from them adds time, not checks
# Layer 0's weight matrices, in Meta's names.
LAYER0 = tuple(f"layers.0.{n}.weight" for n in ("attention.wq", "attention.wk", "attention.wv", "attention.wo",
                                                 "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"))


def short(name: str) -> str:
    """layers.0.attention.wq.weight -> wq"""
    return name.split(".")[-2]
