"""Webhooks: ``POST /webhooks/{source}`` takes pushed profiles, ``GET|POST
/webhooks/{source}/notify?id=`` takes a bare notification and fetches the profile.

Nothing is acknowledged before Kafka has it: 200 after every event's acknowledgement; a
notification that cannot become an event is answered 202 only once its dead letter is
acknowledged; when Kafka does not acknowledge, 503 with Retry-After and nothing is promised.

A token is checked before a byte of the body is read. A request signed with HMAC instead has
its body read first (the signature covers it), bounded by the source's ``max_body_bytes`` and
the service's body timeout and in-flight bytes, and only with a well-formed signature header.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from streams.codecs.events import EventDecoder
from streams.codecs.integers import loads_exact
from streams.errors import InvalidEventError
from streams.http_auth import presented_token, token_matches, unauthorized
from streams.ingest.http.body import read_body
from streams.ingest.http.feature import Feature, FeatureContext
from streams.ingest.http.responses import JSON, error, json_response
from streams.ingest.producer import IngestProducer, KafkaBackpressureError
from streams.ingest.webhooks.config import SourceConfig, WebhookOptions, parse_section
from streams.ingest.webhooks.deadletter import DeadLetterWriter
from streams.ingest.webhooks.fetch import FetchFailedError, ProfileFetcher, is_safe_id
from streams.ingest.webhooks.mapping import (
    MAX_ID_LENGTH,
    PayloadError,
    PayloadMapper,
    is_missing,
    lookup,
    split_path,
)
from streams.ingest.webhooks.openapi import webhook_components, webhook_paths
from streams.kafka.dead_letters import dead_letter_headers
from streams.logs import mask_emails

logger = logging.getLogger(__name__)

Record = tuple[bytes, bytes]
SIGNATURE = re.compile(r"^(sha256=)?[0-9A-Fa-f]{64}$")


class _RefusedError(Exception):
    """Answer the sender with ``status`` and a reason; nothing was produced."""

    def __init__(self, status: int, reason: str, detail: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.detail, self.index = status, reason, detail, index


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class WebhookService:
    def __init__(
        self, options: WebhookOptions, sources: Mapping[str, SourceConfig], context: FeatureContext
    ) -> None:
        self.options = options
        self.sources = dict(sources)
        self.settings = context.settings
        self.producer: IngestProducer = context.producer
        self.decoder = EventDecoder.from_settings(context.settings)
        # A source's token speaks for that source only, and upserts only.
        self.bindings = {name: config.binding(name) for name, config in self.sources.items()}
        self.mappers = {
            name: PayloadMapper(
                source=self.bindings[name].source,
                id_field=config.id_field,
                properties=config.properties,
                timestamp_field=config.timestamp_field,
                event_id_field=config.event_id_field,
            )
            for name, config in self.sources.items()
        }
        self.fetchers = {
            name: ProfileFetcher(config.fetch)
            for name, config in self.sources.items()
            if config.fetch is not None
        }
        self.dead_letters: DeadLetterWriter | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, _app: web.Application) -> None:
        for fetcher in self.fetchers.values():
            await fetcher.start()
        if self.fetchers:
            self.dead_letters = DeadLetterWriter(
                self.settings, self.producer, timeout_s=self.options.dlq_timeout_s
            )

    async def stop(self, _app: web.Application) -> None:
        for fetcher in self.fetchers.values():
            await fetcher.close()

    # -- handlers ------------------------------------------------------------------------
    async def push(self, request: web.Request) -> web.StreamResponse:
        try:
            name, config = self._source(request)
            body = await self._authorized_body(request, name, config, json_body=True)
            received_ms = _now_ms()
            profiles = self._profiles(body, config)
            records = [
                self._record(name, profile, received_ms, index=i)
                for i, profile in enumerate(profiles)
            ]
        except _RefusedError as refused:
            return self._refusal(refused)
        return await self._produce(records, attempts=None)

    async def notify(self, request: web.Request) -> web.StreamResponse:
        try:
            name, config = self._source(request)
            fetcher = self.fetchers.get(name)
            if fetcher is None:
                raise _RefusedError(404, "no_fetch", f"source {name} takes pushed profiles only")
            await self._authorized_body(request, name, config, json_body=False)
            profile_id = request.query.get("id", "").strip()
            if not profile_id or len(profile_id) > MAX_ID_LENGTH:
                raise _RefusedError(
                    400, "missing_id", f"?id= is required, 1-{MAX_ID_LENGTH} characters"
                )
            if not is_safe_id(profile_id):
                raise _RefusedError(400, "bad_id", "?id= must not be a dot segment (. or ..)")
        except _RefusedError as refused:
            return self._refusal(refused)
        received_ms = _now_ms()
        notification = orjson.dumps(
            {
                "webhook": name,
                "id": profile_id,
                "received_at": received_ms,
                "method": request.method,
            }
        )
        try:
            fetched = await fetcher.fetch(profile_id)
        except FetchFailedError as exc:
            return await self._dead_letter(
                name, profile_id, notification, received_ms, exc.reason, exc.detail, exc.attempts
            )
        try:
            profile = self._unwrap(name, loads_exact(fetched.body))
            record = self._record(name, profile, received_ms, fallback_id=profile_id)
        except orjson.JSONDecodeError:
            reason, detail = "origin_bad_json", "the origin's answer is not JSON"
        except _RefusedError as refused:
            reason, detail = refused.reason, refused.detail
        else:
            return await self._produce([record], attempts=fetched.attempts)
        # The origin's own bytes are what a person needs to repair and replay.
        return await self._dead_letter(
            name, profile_id, fetched.body, received_ms, reason, detail, fetched.attempts
        )

    # -- steps ---------------------------------------------------------------------------
    def _source(self, request: web.Request) -> tuple[str, SourceConfig]:
        name = request.match_info["source"]
        config = self.sources.get(name)
        if config is None:
            raise _RefusedError(404, "unknown_source", f"no webhook source named {name[:100]!r}")
        return name, config

    async def _authorized_body(
        self, request: web.Request, name: str, config: SourceConfig, *, json_body: bool
    ) -> bytes:
        """The body of an authenticated request: a token is checked before the body is
        read, a signature after (bounded: see the module's docstring)."""
        token = presented_token(request, config.token_header)
        if token is None and config.allow_query_token:
            token = request.query.get("token")
        authenticated = token_matches(token, config.tokens)
        signature = request.headers.get(config.signature_header, "").strip()
        signed = config.signing_secret is not None and SIGNATURE.match(signature) is not None
        if not (authenticated or signed):
            raise unauthorized(f"webhooks/{name}")
        if json_body and request.content_type != JSON:
            raise _RefusedError(415, "unsupported_media_type", f"Content-Type must be {JSON}")
        body = await read_body(request, config.max_body_bytes)
        if not (authenticated or config.signature_matches(signature, body)):
            raise unauthorized(f"webhooks/{name}")
        return body

    @staticmethod
    def _profiles(body: bytes, config: SourceConfig) -> list[Any]:
        try:
            payload = loads_exact(body)  # integers exact: one out of range is refused
        except orjson.JSONDecodeError as exc:
            raise _RefusedError(400, "bad_json", f"{exc.msg} at char {exc.pos}") from exc
        profiles = payload if isinstance(payload, list) else [payload]
        if not profiles:
            raise _RefusedError(400, "empty", "an empty array holds no profile")
        if len(profiles) > config.max_batch:
            raise _RefusedError(413, "too_many", f"{len(profiles)} profiles > {config.max_batch}")
        return profiles

    def _unwrap(self, name: str, answer: Any) -> Any:
        fetch = self.sources[name].fetch
        if fetch is None or not fetch.profile_path:
            return answer
        profile = lookup(answer, split_path(fetch.profile_path))
        if is_missing(profile):
            raise _RefusedError(422, "origin_no_profile", f"no profile at {fetch.profile_path!r}")
        return profile

    def _record(
        self,
        name: str,
        profile: Any,
        received_ms: int,
        *,
        index: int | None = None,
        fallback_id: str | None = None,
    ) -> Record:
        try:
            event = self.mappers[name].event(profile, received_ms, fallback_id=fallback_id)
            # The processor's own validation, so a 200 never hides a future dead letter.
            key, value, checked = self.decoder.encode(event, _now_ms())
            self.bindings[name].check(checked)
        except (PayloadError, InvalidEventError) as exc:
            raise _RefusedError(422, exc.reason, mask_emails(exc.detail), index) from exc
        return key, value

    async def _produce(self, records: list[Record], *, attempts: int | None) -> web.Response:
        try:
            errors = await self.producer.send(records)
        except KafkaBackpressureError as exc:
            return self._unavailable(str(exc), exc.retry_after)
        if errors:
            first = min(errors)
            return self._unavailable(
                f"{len(errors)} of {len(records)} events not delivered: {errors[first]}", 1
            )
        answer: dict[str, Any] = {"status": "accepted", "events": len(records)}
        if attempts is not None:
            answer["attempts"] = attempts
        return json_response(answer)

    async def _dead_letter(
        self,
        name: str,
        profile_id: str,
        value: bytes,
        received_ms: int,
        reason: str,
        detail: str,
        attempts: int,
    ) -> web.Response:
        assert self.dead_letters is not None  # started with the fetchers
        headers = dead_letter_headers(
            reason,
            mask_emails(detail),
            ("origin", f"webhooks/{name}/notify"),
            ("timestamp", received_ms),
            ("webhook.id", profile_id),
            ("attempts", attempts),
        )
        try:
            await self.dead_letters.write(profile_id.encode(), value, headers)
        except KafkaBackpressureError as exc:
            return self._unavailable(str(exc), exc.retry_after)
        logger.warning(
            "webhook dead-lettered source=%s id=%s reason=%s attempts=%d",
            name,
            mask_emails(profile_id),
            reason,
            attempts,
        )
        answer = {"status": "dead_lettered", "reason": reason, "detail": mask_emails(detail)}
        return json_response({**answer, "attempts": attempts}, 202)

    @staticmethod
    def _refusal(refused: _RefusedError) -> web.Response:
        return error(refused.status, refused.reason, refused.detail, index=refused.index)

    @staticmethod
    def _unavailable(detail: str, retry_after: int | float) -> web.Response:
        logger.warning("webhook not accepted: kafka unavailable detail=%s", detail)
        retry = {"Retry-After": str(max(1, round(retry_after)))}
        return error(503, "broker_unavailable", f"{detail}; retry the whole request", retry)


def build_feature(section: Mapping[str, Any], context: FeatureContext) -> Feature:
    """The ``[webhooks]`` feature; raises ConfigError on a bad section."""
    options, sources = parse_section(section)
    service = WebhookService(options, sources, context)
    return Feature(
        name="webhooks",
        routes=[
            web.post("/webhooks/{source}", service.push),
            web.get("/webhooks/{source}/notify", service.notify, allow_head=False),
            web.post("/webhooks/{source}/notify", service.notify),
        ],
        openapi_paths=webhook_paths(sources),
        openapi_components=webhook_components(sources),
        on_startup=[service.start],
        on_cleanup=[service.stop],
    )
