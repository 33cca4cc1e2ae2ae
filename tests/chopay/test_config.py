"""Settings come from ``CHOPAY_*`` variables, each with a documented default."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from chopay import create_app
from chopay.config import MIB, SETTINGS, Settings, from_env
from chopay.db import get_db


def test_defaults_need_no_configuration():
    settings = from_env({})
    assert settings.data_dir == Path("var")
    assert settings.keys_dir == Path("var/keys")
    assert settings.database_url == f"sqlite:///{Path('var/chopay.db').resolve()}"
    assert settings.sqlite
    assert settings.redis_url is None
    assert settings.inline_jobs is True
    assert settings.bind == "127.0.0.1:8000"
    assert settings.max_body_bytes == 10 * MIB
    assert settings.log_level == "INFO"


def test_variables_are_parsed_to_their_types(tmp_path: Path):
    settings = from_env(
        {
            "CHOPAY_DATA_DIR": str(tmp_path),
            "CHOPAY_WEB_WORKERS": "3",
            "CHOPAY_SWEEP_INTERVAL": "2.5",
            "CHOPAY_MAX_BODY_BYTES": "1024",
            "CHOPAY_REDIS_URL": "redis://127.0.0.1:6379/3",
            "CHOPAY_DATABASE_URL": "postgresql+psycopg://chopay@db.invalid/chopay",
            "CHOPAY_LOG_LEVEL": "",  # empty means unset
        }
    )
    assert settings.data_dir == tmp_path
    assert settings.keys_dir == tmp_path / "keys"
    assert settings.web_workers == 3
    assert settings.sweep_interval == 2.5
    assert settings.max_body_bytes == 1024
    assert settings.log_level == "INFO"
    assert not settings.sqlite
    # With Redis configured, jobs go to Redis unless told otherwise.
    assert settings.inline_jobs is False
    assert from_env({"CHOPAY_REDIS_URL": "redis://x", "CHOPAY_INLINE_JOBS": "yes"}).inline_jobs is True


@pytest.mark.parametrize(
    ("name", "value"),
    [("CHOPAY_WEB_THREADS", "many"), ("CHOPAY_INLINE_JOBS", "maybe"), ("CHOPAY_CHECKPOINT_INTERVAL", "soon")],
)
def test_bad_values_name_the_variable(name: str, value: str):
    with pytest.raises(ValueError, match=name):
        from_env({name: value})


def test_overrides_win_over_the_environment():
    settings = from_env({"CHOPAY_BIND": "0.0.0.0:9000"}, bind="127.0.0.1:9001")
    assert settings.bind == "127.0.0.1:9001"


def test_every_setting_is_documented():
    variables = {f"CHOPAY_{f.name.upper()}" for f in fields(Settings) if f.name != "extra"}
    documented = {name for name, _, _ in SETTINGS}
    assert documented == variables
    assert all(default and text for _, default, text in SETTINGS)


def test_create_app_applies_the_body_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHOPAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHOPAY_MAX_BODY_BYTES", "2048")
    for name in ("CHOPAY_DATABASE_URL", "CHOPAY_REDIS_URL", "CHOPAY_KEYS_DIR"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"log_level": "WARNING"})
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 2048
        assert app.config["CHOPAY"].data_dir == tmp_path
    finally:
        get_db(app).engine.dispose()


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = {
        line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `CHOPAY_")
    }
    assert table == {name for name, _, _ in SETTINGS}
    settable = {f"CHOPAY_{f.name.upper()}" for f in fields(Settings) if f.name != "extra"}
    assert settable == table
