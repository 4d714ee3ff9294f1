"""Kafka plumbing shared by the CLI, the processor and the tests."""
