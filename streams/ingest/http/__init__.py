"""The ingestion service's HTTP API (``streams serve``)."""
