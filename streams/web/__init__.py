"""The worker's HTTP API (profile queries, health, metrics) and the HTTP plumbing every
process shares: serving beside a blocking loop, the process metrics, the guarded /metrics."""
