"""Fixtures of the merchant tests: an app with data keys, users of each role, sample merchants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from chopay.cli.keys import ensure_keys
from chopay.config import Settings
from chopay.db import get_db
from chopay.users import create_user
from tests.chopay.conftest import make_app  # noqa: F401  (apps with other settings)

BIN = "970436"  # Vietcombank: in the directory, receives transfers

Headers = dict[str, str]


def vendor(n: int = 1, **fields: Any) -> dict[str, Any]:
    """Return the fields of an obviously fake vendor, number ``n``."""
    values: dict[str, Any] = {
        "display_name": f"Sạp rau Bà Thử {n}",
        "market_code": "CHO-HAN",
        "market_name": "Chợ Hàn",
        "stall": f"A-{n:03d}",
        "ward": "Phường Hải Châu",
        "province": "Đà Nẵng",
        "phone": "0900000000"[: 10 - len(str(n))] + str(n),
        "bin": BIN,
        "account_number": f"{9_000_000_000 + n}",
        "account_holder": f"NGUYEN VAN THU {n}",
    }
    values.update(fields)
    return values


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Give every merchant test app its data keys."""
    ensure_keys(settings)
    return settings


@pytest.fixture
def user(app: Flask) -> Callable[..., tuple[int, Headers]]:
    """Return a factory of users of a role (a merchant user bound to ``merchant_id``)."""

    def factory(role: str, merchant_id: int | None = None) -> tuple[int, Headers]:
        with get_db(app).unit_of_work() as s:
            issued = create_user(s, name=f"Test {role}", role=role, merchant_id=merchant_id)
        return issued.user.id, {"Authorization": f"Bearer {issued.token}"}

    return factory


@pytest.fixture
def officer(user: Callable[..., tuple[int, Headers]]) -> Headers:
    return user("officer")[1]


@pytest.fixture
def admin(user: Callable[..., tuple[int, Headers]]) -> Headers:
    return user("admin")[1]
