"""The learner's side: the curriculum, progress file, pristine stubs, workspace and file watching."""
