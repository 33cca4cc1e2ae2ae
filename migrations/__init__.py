"""Alembic migrations of the chopay schema."""
