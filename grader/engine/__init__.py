"""The grading engine: the pytest plugin, golden calls and their comparison, the models graded on, in-process runs."""
