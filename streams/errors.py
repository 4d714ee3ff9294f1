"""One exception hierarchy for the whole package."""

from __future__ import annotations


class StreamsError(Exception):
    """Base class of every error raised on purpose by Profile Streams."""


class ConfigError(StreamsError):
    """Configuration is invalid or incomplete."""


class TopicMismatchError(StreamsError):
    """A topic is missing or its partition count differs from the configuration."""


class InvalidEventError(StreamsError):
    """An input record cannot be accepted; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BrokerError(StreamsError):
    """The embedded broker could not be prepared or started."""


class DeliveryError(StreamsError):
    """Kafka did not confirm the delivery of produced records."""


class StoppedError(StreamsError):
    """Asked to stop (a service shutting down) before the work was done."""


class SettingsError(ConfigError):
    """The environment's settings are invalid; ``problems`` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class KafkaUnavailableError(StreamsError):
    """The configured Kafka cluster did not answer in time (down, unreachable or refusing us)."""
