# syntax=docker/dockerfile:1
# Profile Streams worker image.
#   docker build -t profile-streams .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -e STREAMS_API_TOKENS profile-streams  # a worker
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 profile-streams topics create
# docker-compose.yml builds this image for its `topics` and `worker` services.
#
# No compiler is installed: on x86_64 every dependency (rocksdict, confluent-kafka, orjson,
# aiokafka, ...) ships a manylinux wheel. On arm64 faust-streaming has no wheel; its sdist then
# falls back to pure Python when no C compiler is present, which still works.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its dependencies into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# pyproject.toml names README.md as the package's readme, so both are build inputs.
COPY pyproject.toml README.md ./
COPY streams ./streams
RUN /opt/venv/bin/pip install .

# ---- runtime ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="profile-streams" \
      org.opencontainers.image.description="Per-property last-writer-wins customer profiles over Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"

# An unprivileged user that owns nothing but the state directory.
RUN groupadd --system --gid 10001 streams \
 && useradd --system --uid 10001 --gid streams --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin streams \
 && mkdir -p /var/lib/profile-streams \
 && chown streams:streams /var/lib/profile-streams

COPY --from=build /opt/venv /opt/venv
# The code looks for its Avro schemas in STREAMS_SCHEMAS_DIR, else <repo root>/schemas, which
# does not exist for an installed package: ship them and point the variable at them.
COPY schemas /app/schemas

# The worker listens on 0.0.0.0, so it starts only with STREAMS_API_TOKENS from the environment
# (or STREAMS_ALLOW_UNAUTHENTICATED=true): no token is baked into the image.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMS_SCHEMAS_DIR=/app/schemas \
    STREAMS_DATA_DIR=/var/lib/profile-streams \
    STREAMS_WEB_HOST=0.0.0.0 \
    STREAMS_WEB_PORT=6066

WORKDIR /app
USER streams:streams

# RocksDB state: rebuilt from the changelog topic when lost, but keep it on a volume so a
# restarted container does not have to replay the whole changelog.
VOLUME ["/var/lib/profile-streams"]

# Query API (GET /customers/{id}), /health and /metrics.
EXPOSE 6066

# slim images have no curl: ask /health with the standard library. A non-2xx answer raises.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STREAMS_WEB_PORT', '6066') + '/health', timeout=4)"]

# The worker stops cleanly (commits, leaves the consumer group) on SIGINT or SIGTERM. SIGINT also
# works before its handlers are installed: Python handles it by default, even as PID 1, while an
# unhandled SIGTERM to PID 1 is ignored until the grace period ends in a SIGKILL.
STOPSIGNAL SIGINT

ENTRYPOINT ["streams"]
CMD ["worker"]
