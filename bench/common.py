"""What every benchmark shares: settings for an app that runs alone on a scratch directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mediation.core.pii import generate_key
from mediation.core.settings import Settings


def bench_settings(url: str, workdir: Path, **extra: Any) -> Settings:
    """No background tasks (the benchmark drives everything), fresh secrets, no rate limit."""
    return Settings(
        database_url=url,
        secrets_file=workdir / "secrets.json",
        jwt_secret="bench-secret-bench-secret-bench-secret",
        pii_encryption_keys=f"k1:{generate_key()}",
        pii_index_key=generate_key(),
        relay_in_app=False,
        clock_in_app=False,
        documents_dir=workdir / "documents",
        rate_limit_per_minute=1_000_000,
        **extra,
    )
