"""Webhooks of the ingestion service: origins push profiles or notify ids to fetch (``routes``)."""
