"""REST sink: deliver profile upserts to a CRM's HTTP API without ever regressing it.

REST APIs offer no conditional writes, so the sink keeps what the destination accepted (per
customer, per mapped property: value and timestamp) in a local RocksDB and sends only what wins
against it under the processor's merge rules. The store is updated only after the destination
accepted a customer's requests. ``write`` is synchronous (the worker's thread) and drives
httpx on a private event loop owned by the sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from streams.connect.errors import (
    RetryableSinkError,
    SinkBackpressureError,
    SinkConfigError,
    SinkError,
)
from streams.connect.records import Rejection, SinkRecord, WriteResult
from streams.connect.sink import BatchingSink
from streams.connect.sinks.rest.bulk import BulkMode
from streams.connect.sinks.rest.mapping import Mapper, MappingError
from streams.connect.sinks.rest.modes import CreateOrUpdateMode, Job, Mode, UpsertMode
from streams.connect.sinks.rest.options import RestSinkOptions, parse_options
from streams.connect.sinks.rest.state import (
    MAPPING_REASON,
    CustomerPlan,
    DeliveredStore,
    plan_batch,
)
from streams.field_types import JsonScalar
from streams.httpclient.auth import OAuth2ClientCredentials, build_authenticator
from streams.httpclient.errors import (
    HaltedError,
    HttpBackpressureError,
    HttpClientError,
    HttpRefusedError,
    RetryableHttpError,
)
from streams.httpclient.transport import Transport
from streams.logs import mask_emails
from streams.merge import MergePolicy
from streams.model import Profile
from streams.optional import requires
from streams.settings import Settings

with requires("httpx", "the REST sink"):
    import httpx

logger = logging.getLogger(__name__)

USER_AGENT = "profile-streams-rest-sink"


class RestSink(BatchingSink):
    """``[sink]`` options: see ``options.RestSinkOptions`` and the README."""

    def __init__(self, options: Mapping[str, Any], *, name: str, settings: Settings) -> None:
        super().__init__()
        self.name = name
        self.options = parse_options(dict(options), name)
        self._mapper = Mapper(self.options.mapping, self.options.id_field)
        self._policy = MergePolicy(settings.priorities())
        self.state_path = self.options.state_dir or settings.data_dir / f"connect-{name}"
        self._mode = build_mode(self.options, self._mapper)
        self._auth = build_authenticator(self.options.auth, timeout_s=self.options.timeout_s)
        self._runner: asyncio.Runner | None = None
        self._client: httpx.AsyncClient | None = None
        self._store: DeliveredStore | None = None

    def setup(self) -> None:
        if self._runner is not None:
            return
        try:
            self._store = DeliveredStore(self.state_path)
        except Exception as exc:  # rocksdict raises bare Exception (lock held, bad path)
            raise SinkConfigError(f"rest connector {self.name}: state store: {exc}") from exc
        options = self.options
        self._client = httpx.AsyncClient(
            base_url=options.base_url,
            timeout=httpx.Timeout(options.timeout_s),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **options.headers},
            limits=httpx.Limits(max_connections=options.max_concurrency + 1),
        )
        self._runner = asyncio.Runner()
        if isinstance(self._auth, OAuth2ClientCredentials):
            # Bad credentials stop the connector now; a token endpoint that is down can wait.
            try:
                self._runner.run(self._auth.headers(self._client))
            except RetryableHttpError as exc:
                logger.warning("connector=%s token fetch deferred: %s", self.name, exc)
            except HttpRefusedError as exc:
                self.close()
                raise sink_error(exc) from exc
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        runner, client, store = self._runner, self._client, self._store
        self._runner = self._client = self._store = None
        if runner is not None:
            if client is not None:
                runner.run(client.aclose())
            runner.close()
        if store is not None:
            store.close()

    def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        self.setup()
        assert self._runner is not None
        try:
            return self._runner.run(self._write(batch))
        except HttpClientError as exc:  # bulk mode's job requests are not gathered
            raise sink_error(exc) from exc

    async def _write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        assert self._store is not None
        assert self._client is not None
        options = self.options
        plans, rejected = plan_batch(batch, self._mapper, self._store, self._policy)
        jobs: list[Job] = []
        settled: dict[str, Profile] = {}
        for plan in plans:
            if not plan.has_work(options.on_delete):
                settled[plan.customer_id] = plan.after
                continue
            try:
                body = self._body(plan)
            except MappingError as exc:  # a stored value the current mapping refuses
                rejected += [Rejection(r, MAPPING_REASON, str(exc)) for r in plan.records]
                continue
            jobs.append(Job(plan, body, plan.deleted and options.on_delete == "delete"))
        self._store.save(settled)
        transport = Transport(
            self._client,
            self._auth,
            asyncio.Semaphore(options.max_concurrency),
            options.default_retry_after_s,
        )
        outcomes, delivery_failures = await self._mode.deliver(jobs, transport)
        failures = [sink_error(failure) for failure in delivery_failures]
        accepted = {o.job.plan.customer_id: o.job.plan.after for o in outcomes if o.error is None}
        self._store.save(accepted)
        for outcome in outcomes:
            refusal = outcome.error
            if refusal is not None:
                records = outcome.job.plan.records
                rejected += [Rejection(r, refusal.reason, refusal.detail) for r in records]
                logger.warning(
                    "connector=%s destination rejected customer=%s reason=%s",
                    self.name,
                    mask_emails(outcome.job.plan.customer_id),
                    refusal.reason,
                )
        if failures:
            error = _combined(failures, len(jobs), len(accepted))
            if error in failures:
                raise error
            raise error from next((f for f in failures if not isinstance(f, HaltedError)), None)
        logger.debug(
            "connector=%s wrote records=%d customers=%d rejected=%d",
            self.name,
            len(batch),
            len(accepted),
            len(rejected),
        )
        return WriteResult(rejected)

    def _body(self, plan: CustomerPlan) -> dict[str, JsonScalar] | None:
        options = self.options
        properties = plan.send(options.on_delete, options.send_all_fields)
        fields = self._mapper.fields_of({name: s.value for name, s in properties.items()})
        if plan.deleted and options.on_delete == "property" and options.delete.field:
            fields[options.delete.field] = options.delete.value
        if not fields:
            return None
        return {options.id_field: plan.customer_id, **fields}


def build_mode(options: RestSinkOptions, mapper: Mapper) -> Mode:
    modes: dict[str, type[Mode]] = {
        "upsert": UpsertMode,
        "create_or_update": CreateOrUpdateMode,
        "bulk": BulkMode,
    }
    return modes[options.mode](options, mapper)


def sink_error(failure: BaseException) -> BaseException:
    """What an HTTP failure means to the worker: retry, pause or stop; others stay as they are."""
    error: SinkError
    if isinstance(failure, HttpBackpressureError):
        error = SinkBackpressureError(str(failure), retry_after=failure.retry_after or 0.0)
    elif isinstance(failure, RetryableHttpError):
        error = RetryableSinkError(str(failure), retry_after=failure.retry_after)
    elif isinstance(failure, HttpRefusedError):
        error = SinkConfigError(str(failure))
    else:
        return failure
    error.__cause__ = failure
    return error


def _combined(failures: Sequence[BaseException], customers: int, delivered: int) -> BaseException:
    """One error for the worker: fatal beats backpressure beats transient."""
    real = [f for f in failures if not isinstance(f, HaltedError)]
    for failure in real:
        if not isinstance(failure, RetryableSinkError):
            return failure
    summary = f"{delivered} of {customers} customers delivered"
    pressure = [f for f in real if isinstance(f, SinkBackpressureError)]
    if pressure:
        retry_after = max(f.retry_after or 0.0 for f in pressure)
        return SinkBackpressureError(f"{pressure[0]} ({summary})", retry_after=retry_after)
    hints = [f.retry_after for f in real if isinstance(f, RetryableSinkError) and f.retry_after]
    first = real[0] if real else "interrupted"
    return RetryableSinkError(f"{first} ({summary})", retry_after=max(hints) if hints else None)
