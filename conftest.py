# Loads the grader's pytest plugin for every test under this folder (exercises/ and tests/).
pytest_plugins = ["grader.engine.plugin"]
