# syntax=docker/dockerfile:1
# The Blog API as an image: `docker compose up --build` (compose.yaml) or
#   docker build -t blogapi . && docker run -e SECRET_KEY=... -e DATABASE_URL=postgresql://... -p 8000:8000 blogapi
# tests/test_container.py checks this file against the lock, tasks.py and the CLI.

# Both stages must be the same image: the virtualenv's interpreter is a link to the base image's
# Python, and its scripts name /opt/venv/bin/python. The Debian release is named so that a rebuild
# does not move to a new one unannounced.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

# The uv that tasks.py installs (UV_VERSION), the one the lock was written with.
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore uv==0.13.9

# UV_PYTHON_DOWNLOADS=never: the venv must use the base image's Python, which the runtime stage
# has at the same path, never an interpreter uv would fetch into its cache.
# UV_COMPILE_BYTECODE: the runtime never writes .pyc files (PYTHONDONTWRITEBYTECODE, and a
# read-only filesystem under compose), so they are compiled here once, not on every start.
# UV_LINK_MODE=copy: the cache is a build mount, files cannot be hard-linked out of it.
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /src

# The dependencies first, from the lock alone: this layer is rebuilt only when they change, not
# on every change to the code.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, built as a wheel and installed into site-packages (--no-editable): the
# runtime stage gets the venv without /src, and the migrations travel inside the package.
# README.md is the package's long description (pyproject.toml `readme`), the build needs it.
COPY README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime

# A fixed, numeric id: Kubernetes' runAsNonRoot can only verify a number, and volumes can be
# prepared for it in advance.
RUN groupadd --system --gid 10001 blogapi \
    && useradd --system --uid 10001 --gid blogapi --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin blogapi \
    && install --directory --owner=blogapi --group=blogapi --mode=0750 /data

COPY --from=build /opt/venv /opt/venv

# Memory: the project measured glibc's malloc settings (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_)
# and chose none of them (BENCHMARKS.md, "Memory": no gain, or +50 % CPU per login); memory is
# bounded in the code instead (app/security.py's hashing threads), so none is set here. The
# process-level tuning the project does want (the collector, app/serving.py) comes with
# `blogapi serve`, which is why the image runs that rather than plain uvicorn.
#
# WEB_CONCURRENCY=1: one worker per container, scaled by replicas (compose.yaml), so that each
# container is one health check and one metrics target. Raise it for a bigger container: each
# worker may hold 2 x (DB_POOL_SIZE + DB_MAX_OVERFLOW) database connections.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    WEB_CONCURRENCY=1

# Without DATABASE_URL the app keeps SQLite's ./app.db in the working directory: the one place
# the user may write (mount a volume there to keep it).
WORKDIR /data
USER 10001:10001

EXPOSE 8000

# Ready, not merely live: a container whose database is down or not migrated gets no traffic.
# Slim images have no curl; an uncaught error (refused, timeout, a 503) exits 1, which is
# "unhealthy", and the error's line ends up in `docker inspect`'s health log.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

# Migrations: `blogapi serve` applies them first while MIGRATE_ON_STARTUP=true (the default, fine
# for a single container); compose.yaml runs `blogapi db upgrade` once instead and turns it off.
CMD ["blogapi", "serve", "--host", "0.0.0.0", "--port", "8000"]
