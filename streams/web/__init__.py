"""The worker's HTTP API: profile queries, health and metrics."""
