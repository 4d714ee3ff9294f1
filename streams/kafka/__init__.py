"""Kafka plumbing shared by the processor, the connectors, ingestion, the bootstrap, the CLI and
the tests; it imports none of them."""
