"""REST sink (``type = "rest"``): profile upserts to a CRM's HTTP API, never regressing it."""

from streams.connect.sinks.rest.sink import RestSink

__all__ = ["RestSink"]
