"""Connector workers: drain ``profile-upserts`` into destinations without ever regressing them."""
