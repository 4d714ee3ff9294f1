"""The one settings object: environment variables (``STREAMS_*``) and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Room for a changelog record's key and framing next to a state of max_state_bytes.
STATE_RECORD_HEADROOM = 16 * 1024


class Settings(BaseSettings):
    """Every knob of Profile Streams; secrets are ``SecretStr`` and print masked."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMS_", env_file=".env", extra="ignore", frozen=True
    )

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        min_length=1,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "STREAMS_KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"
        ),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # How long a command waits for Kafka's first answer before it says Kafka is unreachable.
    kafka_connect_timeout_seconds: float = Field(default=5.0, gt=0)

    input_topic: str = "profile-changes"
    upserts_topic: str = "profile-upserts"
    stale_topic: str = "profile-stale"
    dlq_topic: str = "profile-changes-dlq"
    changelog_topic: str = "profile-state-changelog"
    # Bloomreach customers/events (`streams serve`, [bloomreach]); unset: they are refused.
    customer_events_topic: str | None = None
    partitions: int = Field(default=8, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=16)

    group_id: str = "profile-streams-processor"
    data_dir: Path = Path("data")
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    # A connector's /health, /metrics and /status (on web_host; 0: any free port).
    connector_web_port: int = Field(default=6067, ge=0, le=65535)
    advertised_url: str | None = None
    # GET /customers/{id} needs one of these (comma list); without any, a worker serves only
    # on a loopback address unless allow_unauthenticated says otherwise.
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    metrics_require_token: bool = False
    # Which customer_ids entry names the customer in a worker's Bloomreach export-one (comma
    # list, first present wins; `streams serve` uses its [bloomreach] id_kinds).
    bloomreach_id_kinds: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["registered"], min_length=1
    )
    allow_unauthenticated: bool = False

    output_format: Literal["avro", "json"] = "avro"
    # Who does a batch's per-event work, the connectors' upsert decoding and the PostgreSQL
    # sink's rows: the Rust kernel, or the Python reference (debugging).
    kernel: Literal["native", "python"] = "native"
    # The Faust engine's Kafka client (faust-streaming's drivers): aiokafka, or confluent-kafka
    # (``confluent://``); benchmarks/README.md says which and why.
    faust_driver: Literal["aiokafka", "confluent"] = "aiokafka"
    source_priority: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_clock_skew_seconds: float = Field(default=300.0, ge=0)
    max_event_bytes: int = Field(default=256 * 1024, ge=256)
    max_properties: int = Field(default=1000, ge=1)
    # Below Kafka's default max.message.bytes (1 MiB): a state must fit in a changelog record.
    max_state_bytes: int = Field(default=900_000, ge=1024)
    # The producers' message.max.bytes (librdkafka's default): dead letters are cut to fit it.
    max_message_bytes: int = Field(default=1_000_000, ge=65_536, le=100_000_000)
    # A record Kafka refuses (not: is unavailable) is tried this often, then parked in the DLQ.
    produce_attempts: int = Field(default=3, ge=1, le=100)

    batch_max_events: int = Field(default=20_000, ge=1)
    batch_max_wait_ms: int = Field(default=50, ge=0)
    session_timeout_ms: int = Field(default=45_000, ge=1000)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    delivery_timeout_ms: int = Field(default=120_000, ge=1000)
    routing_cache_seconds: float = Field(default=2.0, ge=0)
    route_timeout_seconds: float = Field(default=5.0, gt=0)

    # RocksDB memory of one worker, shared by its partitions: the block cache (data, index
    # and filter blocks) and the memtables; files kept open per partition.
    rocksdb_block_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    rocksdb_write_buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=4 * 1024 * 1024)
    rocksdb_max_open_files: int = Field(default=256, ge=20)

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # A worker's and a connector's progress line every this many seconds (0: none).
    progress_log_seconds: float = Field(default=30.0, ge=0)

    @field_validator("source_priority", "api_tokens", "bloomreach_id_kinds", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _distinct_topics(self) -> Settings:
        names = self.topic_names()
        if len(set(names)) != len(names):
            raise ValueError(f"topic names must be distinct, got {names}")
        return self

    @model_validator(mode="after")
    def _state_fits_a_record(self) -> Settings:
        if self.max_state_bytes > self.max_message_bytes - STATE_RECORD_HEADROOM:
            raise ValueError(
                f"max_state_bytes ({self.max_state_bytes}) must stay {STATE_RECORD_HEADROOM} "
                f"bytes below max_message_bytes ({self.max_message_bytes}): a state is a record"
            )
        return self

    def topic_names(self) -> list[str]:
        names = [
            self.input_topic,
            self.upserts_topic,
            self.stale_topic,
            self.dlq_topic,
            self.changelog_topic,
        ]
        if self.customer_events_topic:
            names.append(self.customer_events_topic)
        return names

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings shared by every client (connection and security)."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            config["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return config

    def priorities(self) -> dict[str, int]:
        """Source priority for tie-breaks: earlier in the list ranks higher."""
        count = len(self.source_priority)
        return {source: count - index for index, source in enumerate(self.source_priority)}
