"""PostgreSQL sink (``type = "postgres"``): one row per customer, merged in SQL so a replayed or
late batch never regresses it; ``sql`` holds the stored format, its migrations and the SQL."""

from streams.connect.sinks.postgres.sink import PostgresSink

__all__ = ["PostgresSink"]
