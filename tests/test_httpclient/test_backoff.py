"""Backoff and Retry-After of the shared HTTP client."""

from __future__ import annotations

from streams.httpclient.backoff import parse_retry_after


def test_parse_retry_after():
    assert parse_retry_after("120", 1.0) == 120.0
    assert parse_retry_after("-3", 1.0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1.0, now=1445412470.0) == 10.0
    assert parse_retry_after("", 4.0) == 4.0
