# syntax=docker/dockerfile:1

# ---- builder: install the package and its dependencies into a virtual environment ----------------
FROM python:3.12-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python -m venv /opt/venv
# pyproject.toml names README.md as the package readme, so it is part of the build input.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip wheel --wheel-dir /build/wheels . \
    && /opt/venv/bin/pip install --no-index --find-links /build/wheels mediation

# ---- runtime: the virtual environment, the migrations, an unprivileged user ------------------------
FROM python:3.12-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    MEDIATION_MIGRATIONS_DIR=/app/migrations

RUN groupadd --system --gid 10001 mediation \
    && useradd --system --uid 10001 --gid mediation --home-dir /app --no-create-home mediation \
    && mkdir -p /app/data \
    && chown -R mediation:mediation /app

COPY --from=builder /opt/venv /opt/venv
# Migrations stay owned by root: the service reads them, it never changes them.
COPY migrations /app/migrations
COPY alembic.ini /app/alembic.ini

WORKDIR /app
USER mediation
# Without MEDIATION_DATABASE_URL the service uses SQLite at /app/mediation.db, which is lost with
# the container. For a persistent SQLite file mount a volume on /app/data (owned by `mediation`)
# and set MEDIATION_DATABASE_URL=sqlite+aiosqlite:////app/data/mediation.db; in production use
# PostgreSQL (MEDIATION_DATABASE_URL=postgresql+asyncpg://...).
# Secrets: set MEDIATION_JWT_SECRET, MEDIATION_PII_ENCRYPTION_KEYS and MEDIATION_PII_INDEX_KEY
# (e.g. from a secret store). Without them, SQLite keeps generated ones in a file beside its
# database (lost, or kept, with it); PostgreSQL refuses to start unless MEDIATION_SECRETS_FILE
# names a file on a volume that lasts as long as the database.
# MEDIATION_AUDIT_SEAL_KEYS seals the audit trail; keep it where the database's owners cannot read it.
# Behind a reverse proxy in another container, set MEDIATION_FORWARDED_ALLOW_IPS to its address or
# network: otherwise every caller counts as the proxy's one address against the per-address limits.
ENV MEDIATION_DOCUMENTS_DIR=/app/data/documents

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Migrations run at every start (a no-op when the schema is current), then the API is served.
CMD ["sh", "-c", "mediation migrate && exec mediation serve --host 0.0.0.0 --port 8000"]
