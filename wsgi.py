"""WSGI entry point: ``gunicorn wsgi:app``."""

from chopay import create_app

app = create_app()
