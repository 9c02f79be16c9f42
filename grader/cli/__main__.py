"""python -m grader.cli: the llama3-grader command (what torchrun -m runs on every rank)."""

from . import main

main()
