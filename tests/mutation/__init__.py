"""Mutation testing of the pure modules: do their tests notice a one-token change?

``operators`` makes the mutants, ``runner`` runs a module's tests against each one in a copy of
the project and prints a JSON report, and ``mutation.toml`` names each module's tests and the
mutants that are equivalent (no test could observe them), each with its reason. Run it with
``python -m tests.mutation MODULE ...``; the README's "Mutation testing" paragraph has more.
"""
