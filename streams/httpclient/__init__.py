"""HTTP client plumbing shared by the REST sink and the webhook fetcher.

Auth schemes (``auth``), exponential backoff and Retry-After (``backoff``), what a failed
exchange stands for (``failures``, raising ``errors``) and one-write requests (``transport``).
Imports nothing from ``streams.connect`` or ``streams.ingest``: they build on it.
"""
