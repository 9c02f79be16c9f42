"""Varied prompts for grading on the trained model: English, code, numbers of four or more digits, Chinese,
whitespace runs, and a few of 200 tokens or more."""

_STORY = ("Once upon a time, in a small village at the edge of a great forest, there lived an old clockmaker named "
          "Elias. Every morning he opened his shop at seven o'clock, swept the floor, and wound the forty-two clocks "
          "that hung on the walls. The villagers said that his clocks never lost a second, and travellers came from "
          "distant towns to buy them. One winter evening, a girl knocked on his door with a broken pocket watch. "
          "It had belonged to her grandmother, she said, and it had stopped on the night the old woman died. Elias "
          "turned the watch over in his hands, opened the case, and looked for a long time at the tiny gears inside. ")
_CODE = '''import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Root-mean-square normalisation over the last dimension."""
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return normed.type_as(x) * weight


class Attention(torch.nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.wq = torch.nn.Linear(dim, dim, bias=False)
        self.wk = torch.nn.Linear(dim, dim, bias=False)
        self.wv = torch.nn.Linear(dim, dim, bias=False)
        self.wo = torch.nn.Linear(dim, dim, bias=False)

    def forward(self, x):
'''
_REPORT = ("Quarterly report, fiscal year 2024. Revenue rose from 1,234,567 dollars in Q1 to 2,345,678 in Q2, "
           "while costs fell by 8.25 percent. The board met on 2024-03-15 and again on 2024-09-30. Headcount: 1024 "
           "engineers, 2048 support staff, and 4096 contractors across 12 offices. Order numbers 100245, 100246 and "
           "100981 were delayed by 3 to 5 business days. In 1969 the company had 17 employees; by 1999 it had 4321. "
           "Projected 2025 figures: 3,141,592 in revenue and 271,828 in profit, a margin of 8.65 percent. ")

PROMPTS = {
    "capital": "The capital of France is",
    "prompt42": "the answer to the ultimate question of life, the universe, and everything is ",
    "recipe": "To make a simple tomato soup, you will need",
    "science": "Photosynthesis is the process by which plants",
    "history": "The French Revolution began in 1789 when",
    "year_math": "If a person was born in 1987, in the year 2024 they will be",
    "big_numbers": "The population grew from 1234567 to 7654321, an increase of",
    "dates": "On 2023-11-05 at 14:30, the meeting about invoice #48213 started, and it ended at",
    "python": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "javascript": "function add(a, b) {\n  return",
    "sql": "SELECT name, COUNT(*) AS orders\nFROM customers\nJOIN orders ON",
    "chinese": "中国的首都是",
    "chinese_long": ("人工智能是计算机科学的一个分支，它企图了解智能的实质，"
                     "并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"),
    "mixed_languages": "In Chinese, 'hello' is 你好 and 'thank you' is 谢谢. In Japanese, 'thank you' is",
    "whitespace": "Name:      Alice\nAge:       30\n\n\n\nCity:\t\tParis\n        Country:",
    "indented": "    if x > 0:\n        if y > 0:\n            return 'both positive'\n        else:\n",
    "list": "Shopping list:\n- apples\n- bread\n- milk\n-",
    "question": "Question: What is the largest planet in our solar system?\nAnswer:",
    "chat": "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
    "emoji": "I love pizza 🍕 and coffee ☕, but my favourite is",
    "story_long": _STORY * 2,
    "code_long": _CODE * 2,
    "report_long": _REPORT * 3,
    "repetition": "one two three four five six seven eight nine ten " * 22,
}
