"""Profile Streams: per-property last-writer-wins customer profiles over Kafka."""

__version__ = "0.1.0"
