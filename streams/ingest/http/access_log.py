"""Access log lines without query strings: a notify URL may carry ``?token=`` and ``?id=``."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s status=%d bytes=%d ms=%.1f",
            request.method,
            request.path,  # the path only: never the query string
            response.status,
            response.body_length,
            time * 1000,
        )
