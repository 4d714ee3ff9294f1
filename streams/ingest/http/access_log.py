"""Access log lines without query strings: a notify URL may carry ``?token=`` and ``?id=``."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from streams.logs import escape_controls


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # The path as sent, still percent-encoded ("%0A" stays three characters, never a line
        # break), and never the query string.
        path = request.raw_path.partition("?")[0]
        self.logger.info(
            "%s %s status=%d bytes=%d ms=%.1f",
            escape_controls(request.method),
            escape_controls(path),
            response.status,
            response.body_length,
            time * 1000,
        )
