"""The jobs API's request and response bodies.

The request models validate what clients send, the response models are what the handlers
answer, and the OpenAPI document's schemas are generated from both, so the document cannot
drift from the service.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JOB_ID = r"^(bootstrap|export)-\d{8}T\d{6}-[0-9a-f]{8}$"
JobType = Literal["bootstrap", "export"]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BootstrapJobRequest(BaseModel):
    """Overrides a caller may choose: a delta window and a gentler rate, nothing that changes
    what data is read or how it is stamped."""

    model_config = ConfigDict(extra="forbid")

    config: str = Field(min_length=1, description="a [jobs.bootstrap.<name>]")
    since: str | None = Field(
        default=None,
        min_length=1,
        description="delta run: rows modified since (e.g. 24h, or ISO-8601)",
    )
    max_rate: float | None = Field(default=None, gt=0, description="rows/s")
    resume: str | None = Field(
        default=None,
        pattern=JOB_ID,
        description="a failed bootstrap job's id: continue after its last confirmed row, "
        "with its snapshot time and window (no since)",
    )


class ExportJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str = Field(min_length=1, description="a [jobs.export.<name>]")


class Links(BaseModel):
    self: str


class JobAccepted(BaseModel):
    id: str
    state: Literal["queued"] = "queued"
    links: Links


class Job(BaseModel):
    """What ``GET /jobs/{id}`` answers; progress is live while the job runs."""

    id: str
    type: JobType
    config: str
    params: dict[str, Any]
    state: JobState
    records_processed: int | None
    total_records: int | None = Field(description="null when the source cannot tell (a SQL query)")
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    report: dict[str, Any] | None = Field(
        description="the bootstrap's JSON report or the export's summary"
    )
    error: str | None
    links: Links


class JobList(BaseModel):
    jobs: list[Job]


REQUESTS: tuple[type[BaseModel], ...] = (BootstrapJobRequest, ExportJobRequest)
RESPONSES: tuple[type[BaseModel], ...] = (JobAccepted, Job, JobList)
