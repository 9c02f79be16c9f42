"""llama3-kit's grader: pytest plugin, comparison, goldens, checkpoints, and the llama3-grader CLI."""
