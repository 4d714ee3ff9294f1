# syntax=docker/dockerfile:1
# Profile Streams worker image.
#   docker build -t profile-streams .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -e STREAMS_API_TOKENS profile-streams  # a worker
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 profile-streams topics create
# docker-compose.yml builds this image for its `topics`, `worker`, `serve` and
# `postgres-connector` services; deploy/kubernetes/ runs it too.
#
# The build stage compiles the Rust kernel (native/, imported as streams._native) with a Rust
# toolchain copied from the official rust image and Debian's gcc as its linker, builds the
# project's wheel with maturin and installs it into a virtualenv, with the drivers of every
# command (the postgres, rest and amqp extras; not faust, the benchmarks' contender). The
# runtime stage receives only that virtualenv: it has neither a compiler nor Rust. The other
# dependencies (rocksdict, confluent-kafka, orjson, psycopg, ...) ship manylinux wheels.

ARG PYTHON_IMAGE=python:3.11-slim
# The toolchain that builds native/ (PyO3 0.30 needs Rust 1.85+). Only /usr/local/{rustup,cargo}
# are taken from it: rustup's toolchains are not tied to the image's Debian release.
ARG RUST_IMAGE=rust:1.95-slim

FROM ${RUST_IMAGE} AS rust

# ---- build: the Rust kernel, the wheel, and a virtualenv with it and its dependencies ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH="/usr/local/cargo/bin:${PATH}"
# rustc links the extension with cc, which the slim image lacks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
RUN cargo --version && rustc --version
RUN python -m venv /opt/venv
WORKDIR /src
# pyproject.toml names README.md as the package's readme, so both are build inputs.
COPY pyproject.toml README.md ./
COPY native ./native
COPY streams ./streams
# The cache mounts keep crates.io downloads and cargo's build directory between builds, so a
# change in native/src recompiles only the crate. pyproject.toml has maturin build --locked.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/native/target \
    /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install "$(echo /wheels/profile_streams-*.whl)[postgres,rest,amqp]"

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

# The wheel ships the Avro schemas and the broker's pom inside the streams package.
COPY --from=build /opt/venv /opt/venv

# The worker listens on 0.0.0.0, so it starts only with STREAMS_API_TOKENS from the environment
# (or STREAMS_ALLOW_UNAUTHENTICATED=true): no token is baked into the image.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
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
