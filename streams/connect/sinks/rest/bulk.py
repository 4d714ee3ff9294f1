"""Bulk mode of the REST sink: one import job per batch, polled to completion (Poppulo-style).

Deletes (``on_delete = "delete"``) go one by one first. The job's status link (``Location`` or
``status_url``) is polled until ``completed`` with per-record ``results``
(``{"index", "status", "code", "message"}``); a failed record is rejected with its code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

from streams.connect.errors import RetryableSinkError, SinkConfigError
from streams.connect.sinks.rest.mapping import Mapper
from streams.connect.sinks.rest.modes import GONE, Delivery, Job, Mode, Outcome, json_body
from streams.connect.sinks.rest.options import RestSinkOptions
from streams.connect.sinks.rest.rejections import ErrorItem, error_item, error_items
from streams.httpclient.failures import MAX_DETAIL
from streams.httpclient.transport import REJECT_STATUSES, Transport
from streams.logs import mask_emails
from streams.optional import requires

with requires("httpx", "the REST sink"):
    import httpx

logger = logging.getLogger(__name__)

CONFLICT = 409
DONE_STATES = frozenset({"completed", "complete", "done", "finished", "succeeded"})
FAILED_STATES = frozenset({"failed", "error", "aborted", "cancelled"})
OK_RESULTS = frozenset({"ok", "success", "succeeded", "created", "updated", "unchanged"})


class BulkMode(Mode):
    """Deletes go one by one first; every body goes into one import job, polled to the end."""

    def __init__(self, options: RestSinkOptions, mapper: Mapper) -> None:
        super().__init__(options, mapper)
        self._pending: str | None = None  # status link of a job that outlived its write

    async def deliver(self, jobs: Sequence[Job], transport: Transport) -> Delivery:
        if self._pending is not None:
            # Never submit a new job while an older one may still apply older values.
            await self._poll(transport, self._pending)  # its results are superseded
            self._pending = None
        outcomes: list[Outcome] = []
        deletes = [job for job in jobs if job.delete]
        errors = await asyncio.gather(
            *(self._delete_one(job, transport) for job in deletes), return_exceptions=True
        )
        failures = [error for error in errors if isinstance(error, BaseException)]
        if failures:
            return outcomes, failures
        refused: set[int] = set()
        for job, error in zip(deletes, errors, strict=True):
            if isinstance(error, ErrorItem):
                refused.add(id(job))
                outcomes.append(Outcome(job, error))
        bodies = [job for job in jobs if job.body is not None and id(job) not in refused]
        outcomes += [
            Outcome(job, None) for job in jobs if job.body is None and id(job) not in refused
        ]
        if bodies:
            outcomes += await self._import(bodies, transport)
        return outcomes, []

    async def _delete_one(self, job: Job, transport: Transport) -> ErrorItem | None:
        return await self._delete(
            transport, self._path(self.options.delete_path(), job.plan.customer_id)
        )

    async def _import(self, jobs: Sequence[Job], transport: Transport) -> list[Outcome]:
        options = self.options.bulk
        what = f"POST {options.path}"
        outcomes: list[Outcome] = []
        remaining = list(jobs)
        while remaining:
            payload = {options.records_key: [job.body for job in remaining]}
            response = await transport.request("POST", options.path, json=payload)
            if response.status_code == CONFLICT:
                raise RetryableSinkError(f"{what}: HTTP 409 (another import running?)")
            if response.status_code not in REJECT_STATUSES:
                break
            # A job refused for named records: those are rejected, the rest submitted again.
            items = error_items(json_body(response, what), response.status_code)
            named = {
                i.position: i
                for i in items
                if i.position is not None and i.position < len(remaining)
            }
            if not named or len(named) < len(items):
                raise SinkConfigError(f"{what}: the import job was refused: {items[0].reason}")
            outcomes += [Outcome(remaining[i], item) for i, item in named.items()]
            remaining = [job for i, job in enumerate(remaining) if i not in named]
        else:
            return outcomes
        results = await self._run_job(response, what, transport)
        failed: dict[int, ErrorItem] = {}
        for position, result in enumerate(results):
            if not isinstance(result, dict):
                continue
            if str(result.get("status", "ok")).lower() in OK_RESULTS:
                continue
            item = error_item(result)
            failed[item.position if item.position is not None else position] = item
        return outcomes + [Outcome(job, failed.get(i)) for i, job in enumerate(remaining)]

    async def _run_job(
        self, response: httpx.Response, what: str, transport: Transport
    ) -> list[Any]:
        link = response.headers.get("Location")
        body = json_body(response, what) if response.content else {}
        if isinstance(body, dict) and body.get("status_url"):
            link = str(body["status_url"])
        if not link:
            raise SinkConfigError(f"{what}: no status link (Location or status_url)")
        self._pending = urljoin(str(response.url), link)
        results = await self._poll(transport, self._pending)
        self._pending = None
        if results is None:
            raise RetryableSinkError(f"{what}: the import job failed or vanished")
        return results

    async def _poll(self, transport: Transport, status_url: str) -> list[Any] | None:
        """Per-record results of the finished job; None if it failed or vanished.

        Raises RetryableSinkError while it still runs at ``max_wait_s`` (the link is kept).
        """
        options = self.options.bulk
        deadline = time.monotonic() + options.max_wait_s
        while True:
            await asyncio.sleep(options.poll_interval_s)  # polling a job, not a retry
            response = await transport.request("GET", status_url, ok_statuses=GONE)
            if response.status_code in GONE:
                return None
            status = json_body(response, "GET import status")
            state = str(status.get("status", "")).lower() if isinstance(status, dict) else ""
            if state in DONE_STATES:
                results = status.get("results") or []
                return results if isinstance(results, list) else []
            if state in FAILED_STATES:
                logger.warning("import job failed: %s", mask_emails(str(status)[:MAX_DETAIL]))
                return None
            if time.monotonic() >= deadline:
                raise RetryableSinkError(f"import job not done after {options.max_wait_s}s")
