from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, read from `MEDIATION_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="MEDIATION_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{Path.cwd() / 'mediation.db'}",
        description="SQLAlchemy URL; sqlite+aiosqlite (embedded default) or postgresql+asyncpg.",
    )
    db_pool_size: int = 10
    db_max_overflow: int = 20
    db_pool_timeout_seconds: float = 10.0
    sqlite_busy_timeout_ms: int = 30_000

    max_body_bytes: int = 1_048_576

    idempotency_ttl_hours: int = 24
    idempotency_lock_seconds: int = 60

    # Legal periods (domain.md §4); the law's numbers are defaults, a center may configure them.
    confirmation_window_days: int = 30  # 民诉法 Art. 205; 人民调解法 Art. 33
    labour_mediation_days: int = 15  # 劳动争议调解仲裁法 Art. 14

    timezone: str = "Asia/Shanghai"
    default_language: str = "zh"


@lru_cache
def get_settings() -> Settings:
    return Settings()
