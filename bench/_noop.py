"""A bare Flask app with one no-op POST: the ceiling the intake benchmark compares against."""

from __future__ import annotations

from flask import Flask, request

app = Flask("noop")


@app.post("/noop")
def noop() -> tuple[dict[str, bool], int]:
    """Read the body and answer like the intake does, doing nothing else."""
    request.get_data()
    return {"success": True}, 201
