"""Bloomreach Engagement's tracking routes on ``streams serve`` (the ``[bloomreach]`` table): a
client written for Bloomreach points at the service and works unchanged.

``config`` (keys with project tokens), ``auth`` (HTTP Basic for private keys, ``Token`` for
public ones), ``commands`` (bodies to per-command results and records, no I/O), ``answers``
(Bloomreach's answer shapes), ``openapi`` and ``routes`` (the feature).
"""
