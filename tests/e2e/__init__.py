"""Whole-service tests: the ``chopay`` command serving over real sockets."""
