"""marshmallow fields that hold clients to exactly what the OpenAPI document says."""

from __future__ import annotations

from typing import Any

import marshmallow as ma


class StrictBoolean(ma.fields.Boolean):
    """A JSON ``true`` or ``false``; never ``0``, ``1``, ``"yes"`` or ``"true"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if type(value) is not bool:
            raise self.make_error("invalid", input=value)
        return value
