"""AMQP (RabbitMQ) source: Proca action and event messages into ``profile-changes``."""
