"""Reference implementation of the 12 core exercises: the ground the goldens stand on."""
