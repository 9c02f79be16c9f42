"""Reference implementation of every exercise, the core and the extras: the ground the goldens stand on."""
