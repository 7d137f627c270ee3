from __future__ import annotations

import stat
from pathlib import Path

import pytest

from consentry.errors import ConfigurationError
from consentry.settings import Settings, get_settings


@pytest.mark.parametrize(
    ("env", "issuer", "ok"),
    [
        ("development", "http://127.0.0.1:8000", True),
        ("development", "http://localhost:8000", True),
        ("development", "https://id.example.com", False),
        ("production", "https://id.example.com", True),
        ("production", "http://id.example.com", False),
        ("production", "http://127.0.0.1:8000", True),
    ],
    ids=lambda v: str(v),
)
def test_insecure_setups_are_refused(env: str, issuer: str, ok: bool, tmp_path: Path) -> None:
    settings = Settings(env=env, issuer=issuer, secret_key_file=tmp_path / "s")  # type: ignore[arg-type]
    if ok:
        settings.check_secure()
    else:
        with pytest.raises(ConfigurationError):
            settings.check_secure()


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="32 characters"):
        Settings(secret_key="short").check_secure()  # type: ignore[arg-type]


def test_secret_key_is_generated_once_and_persisted_privately(tmp_path: Path) -> None:
    path = tmp_path / "consentry.secret"
    first = Settings(secret_key_file=path).resolved_secret_key()
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(secret_key_file=path).resolved_secret_key() == first


def test_secret_key_from_environment_wins(tmp_path: Path) -> None:
    settings = Settings(secret_key="k" * 40, secret_key_file=tmp_path / "unused")  # type: ignore[arg-type]
    assert settings.resolved_secret_key() == b"k" * 40
    assert not (tmp_path / "unused").exists()


def test_unwritable_secret_key_location_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="secret key file"):
        Settings(secret_key_file=tmp_path / "missing-dir" / "secret").resolved_secret_key()


def test_get_settings_reports_bad_values_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("CONSENTRY_ACCESS_TOKEN_TTL", "soon")
    try:
        with pytest.raises(ConfigurationError) as info:
            get_settings()
        assert "CONSENTRY_ACCESS_TOKEN_TTL" in str(info.value)
        assert "\n" not in str(info.value)
    finally:
        get_settings.cache_clear()


def test_get_settings_is_cached_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("CONSENTRY_CONSENT_TTL_DAYS", "30")
    try:
        assert get_settings().consent_ttl_days == 30
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("field", "value"),
    [("issuer", "ftp://x"), ("issuer", "https://id.example.com/?q=1"), ("database_url", "mysql://x/y")],
    ids=lambda v: str(v),
)
def test_invalid_values(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_defaults_match_spec() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./consentry.db"
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.queue_url == "db"
    assert (settings.consent_ttl_days, settings.access_token_ttl) == (90, 3600)
    assert (settings.refresh_token_ttl, settings.auth_code_ttl) == (30 * 86400, 600)
    assert (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism) == (
        19456,
        2,
        1,
    )
