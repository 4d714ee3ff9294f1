"""The jobs API: token-protected triggers of named bootstrap and export configurations, and
their status for a progress bar (Poppulo's import status; LISTSERV Maestro's token triggers).

``POST /jobs/bootstrap`` and ``POST /jobs/export`` answer 202 with the job's link; ``GET
/jobs/{id}`` answers its state, ``records_processed`` of ``total_records``, times, the final
report and the error; ``GET /jobs`` lists the recent ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from streams.errors import ConfigError
from streams.http_auth import presented_token, token_matches, unauthorized
from streams.ingest.http.body import read_body
from streams.ingest.http.feature import Feature, FeatureContext
from streams.ingest.http.job_bodies import (
    JOB_ID,
    BootstrapJobRequest,
    ExportJobRequest,
    JobAccepted,
    JobList,
    JobState,
    JobType,
    Links,
)
from streams.ingest.http.job_runner import (
    NOT_STARTED,
    BootstrapJobConfig,
    ExportJobConfig,
    JobRecord,
    JobStore,
    new_job_id,
    now_ms,
    run_bootstrap_job,
    run_export_job,
    safe_error,
)
from streams.ingest.http.jobs_openapi import COMPONENTS, PATHS
from streams.ingest.http.responses import JSON, error, json_response
from streams.settings import Settings
from streams.validation import validation_problems

logger = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 50
MAX_REQUEST_BYTES = 64 * 1024  # a job request names a configuration and a few overrides
# Only job ids route to GET /jobs/{id}: /jobs/bootstrap and /jobs/export stay POST-only.
JOB_ID_ROUTE = JOB_ID.removeprefix("^").removesuffix("$").replace("(", "(?:")
M = TypeVar("M", bound=BaseModel)


class JobsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[SecretStr] = Field(min_length=1)
    state_dir: Path
    max_concurrent: int = Field(default=2, ge=1)
    retry_after_s: int = Field(default=30, ge=1)  # told to a client when every slot is busy
    # How long a stopping service waits for its running jobs to confirm what they produced.
    stop_timeout_s: float = Field(default=60.0, gt=0)
    bootstrap: dict[str, BootstrapJobConfig] = Field(default_factory=dict)
    export: dict[str, ExportJobConfig] = Field(default_factory=dict)


class JobsService:
    def __init__(self, config: JobsConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.store = JobStore(config.state_dir)
        self.jobs: dict[str, JobRecord] = {}
        self._executor: ThreadPoolExecutor | None = None

    async def start(self, _app: web.Application) -> None:
        self.jobs = await asyncio.to_thread(self.store.load)
        self._executor = ThreadPoolExecutor(self.config.max_concurrent, "streams-job")

    async def stop(self, _app: web.Application) -> None:
        """Queued jobs never start; running ones are asked to stop and given ``stop_timeout_s``:
        a bootstrap confirms and checkpoints what it produced (resumable), an export leaves no
        file. Both end failed, saying so."""
        if self._executor is None:
            return
        for record in self.jobs.values():
            if record.active:
                record.stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for record in self.jobs.values():
            if record.state is JobState.QUEUED:  # cancelled above, or it stops at once
                record.state, record.error = JobState.FAILED, NOT_STARTED
                record.finished_at = now_ms()
                self.store.save(record)
        deadline = time.monotonic() + self.config.stop_timeout_s
        while time.monotonic() < deadline and any(r.active for r in self.jobs.values()):
            await asyncio.sleep(0.05)
        left = [record.id for record in self.jobs.values() if record.active]
        if left:
            logger.warning(
                "jobs still running %.0f s after the stop; the process ends when they do: %s",
                self.config.stop_timeout_s,
                ", ".join(left),
            )

    # -- handlers ------------------------------------------------------------------------
    async def start_bootstrap(self, request: web.Request) -> web.Response:
        self._authorize(request)
        parsed = await self._body(request, BootstrapJobRequest)
        if isinstance(parsed, web.Response):
            return parsed
        config = self.config.bootstrap.get(parsed.config)
        if config is None:
            return self._unknown_config("bootstrap", parsed.config)
        params = parsed.model_dump(exclude={"config"}, exclude_none=True)
        if parsed.resume is not None:
            resumed = self._resumable(parsed)
            if isinstance(resumed, web.Response):
                return resumed
            params = resumed
        checkpoints = self.config.state_dir / "checkpoints"
        return self._submit(
            "bootstrap",
            parsed.config,
            params,
            lambda record: run_bootstrap_job(self.settings, config, record, checkpoints),
        )

    async def start_export(self, request: web.Request) -> web.Response:
        self._authorize(request)
        parsed = await self._body(request, ExportJobRequest)
        if isinstance(parsed, web.Response):
            return parsed
        config = self.config.export.get(parsed.config)
        if config is None:
            return self._unknown_config("export", parsed.config)
        return self._submit(
            "export",
            parsed.config,
            {},
            lambda record: run_export_job(self.settings, config, record),
        )

    async def get_job(self, request: web.Request) -> web.Response:
        self._authorize(request)
        job_id = request.match_info["id"]
        record = self.jobs.get(job_id) if re.match(JOB_ID, job_id) else None
        if record is None:
            return error(404, "unknown_job", f"no job {job_id[:100]!r}")
        return json_response(record.view().model_dump(mode="json"))

    async def list_jobs(self, request: web.Request) -> web.Response:
        self._authorize(request)
        try:
            limit = int(request.query.get("limit", DEFAULT_LIST_LIMIT))
        except ValueError:
            return error(400, "bad_limit", "limit is a positive integer")
        if limit < 1:
            return error(400, "bad_limit", "limit is a positive integer")
        recent = sorted(self.jobs.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        jobs = JobList(jobs=[record.view() for record in recent[:limit]])
        return json_response(jobs.model_dump(mode="json"))

    # -- steps ---------------------------------------------------------------------------
    def _authorize(self, request: web.Request) -> None:
        if not token_matches(presented_token(request), self.config.tokens):
            raise unauthorized("jobs")

    @staticmethod
    async def _body(request: web.Request, model: type[M]) -> M | web.Response:
        if request.content_type != JSON:
            return error(415, "unsupported_media_type", f"Content-Type must be {JSON}")
        try:
            return model.model_validate_json(await read_body(request, MAX_REQUEST_BYTES))
        except ValidationError as exc:
            return error(422, "bad_request", validation_problems(exc, "body"))

    def _resumable(self, parsed: BootstrapJobRequest) -> dict[str, Any] | web.Response:
        """The params of a job continuing ``parsed.resume``: its checkpoint and its window."""
        original = self.jobs.get(parsed.resume or "")
        if original is None or original.type != "bootstrap":
            return error(404, "unknown_job", f"no bootstrap job {parsed.resume!r}")
        if original.config != parsed.config:
            detail = f"job {original.id} ran [jobs.bootstrap.{original.config}]"
            return error(422, "resume_mismatch", detail)
        if original.state is not JobState.FAILED:
            return error(409, "not_resumable", f"job {original.id} is {original.state}")
        if parsed.since is not None:
            return error(422, "bad_request", "a resumed job keeps the window it started with")
        params = {key: value for key, value in original.params.items() if key != "max_rate"}
        params["resume"] = original.params.get("resume", original.id)  # the checkpoint's id
        if parsed.max_rate is not None:
            params["max_rate"] = parsed.max_rate
        return params

    @staticmethod
    def _unknown_config(kind: str, name: str) -> web.Response:
        return error(404, "unknown_config", f"no [jobs.{kind}.{name[:100]}] configuration")

    def _submit(
        self, kind: JobType, name: str, params: dict[str, Any], work: Callable[[JobRecord], None]
    ) -> web.Response:
        assert self._executor is not None, "the jobs feature was not started"
        active = sum(record.active for record in self.jobs.values())
        if active >= self.config.max_concurrent:
            return error(
                429,
                "busy",
                f"{active} jobs running, at most {self.config.max_concurrent}",
                {"Retry-After": str(self.config.retry_after_s)},
            )
        record = JobRecord(new_job_id(kind), kind, name, params, created_at=now_ms())
        self.jobs[record.id] = record
        self.store.save(record)
        link = f"/jobs/{record.id}"
        body = JobAccepted(id=record.id, links=Links(self=link)).model_dump(mode="json")
        self._executor.submit(self._execute, record, work)
        logger.info("job queued id=%s type=%s config=%s", record.id, kind, name)
        return json_response(body, 202, {"Location": link})

    def _execute(self, record: JobRecord, work: Callable[[JobRecord], None]) -> None:
        """In a worker thread: run, then record the end whatever it is."""
        if record.stop.is_set():  # the service stopped before it began (stop() recorded it)
            return
        record.started_at = now_ms()
        record.state = JobState.RUNNING
        self.store.save(record)
        try:
            work(record)
        except Exception as exc:  # the job's failure belongs in its record, not in a log only
            record.error = safe_error(exc)
            record.state = JobState.FAILED
            logger.warning("job failed id=%s error=%s", record.id, record.error)
        else:
            record.state = JobState.SUCCEEDED
        finally:
            progress, record.progress = record.progress, None
            if progress is not None and record.records_processed is None:
                record.records_processed = progress()
            record.finished_at = now_ms()
            self.store.save(record)
        logger.info("job finished id=%s state=%s", record.id, record.state)


def build_feature(section: Mapping[str, Any], context: FeatureContext) -> Feature:
    """The ``[jobs]`` feature; raises ConfigError on a bad section."""
    try:
        config = JobsConfig.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(f"[jobs]: {validation_problems(exc)}") from exc
    if not config.bootstrap and not config.export:
        raise ConfigError(
            "[jobs] names no job: add [jobs.bootstrap.<name>] or [jobs.export.<name>]"
        )
    service = JobsService(config, context.settings)
    return Feature(
        name="jobs",
        routes=[
            web.post("/jobs/bootstrap", service.start_bootstrap),
            web.post("/jobs/export", service.start_export),
            web.get("/jobs", service.list_jobs, allow_head=False),
            web.get(f"/jobs/{{id:{JOB_ID_ROUTE}}}", service.get_job, allow_head=False),
        ],
        openapi_paths=PATHS,
        openapi_components=COMPONENTS,
        on_startup=[service.start],
        on_cleanup=[service.stop],
    )
