"""Ingestion: HTTP tracking and webhooks, AMQP queues and change logs into ``profile-changes``."""
