"""Options of the REST sink (the ``[sink]`` table of a connector file), validated up front."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.connect.errors import SinkConfigError
from streams.connect.sinks.rest.mapping import FieldMapping, Mapper
from streams.connect.sinks.rest.state import OnDelete
from streams.field_types import JsonScalar
from streams.httpclient.auth import AuthOptions
from streams.validation import validation_problems

Method = Literal["POST", "PUT", "PATCH"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpsertOptions(_Options):
    """One idempotent request per contact, addressed by our customer id (``{id}``)."""

    method: Method = "PUT"
    path: str = "/contacts/{id}"


class CreateOrUpdateOptions(_Options):
    """Search first, then create or update at separate endpoints (``{contact_id}``)."""

    search_path: str = "/contacts/search"
    search_by: Literal["id", "email"] = "id"
    search_param: str | None = None  # query parameter; default: the id or email field name
    email_field: str = "email"  # destination field holding the email (a mapped field)
    results_key: str | None = "results"  # None: the search answers a bare JSON list
    contact_id_key: str = "id"
    create_method: Method = "POST"
    create_path: str = "/contacts"
    update_method: Method = "PATCH"
    update_path: str = "/contacts/{contact_id}"


class BulkOptions(_Options):
    """Submit one import job per batch, poll its status link, read per-record results."""

    path: str = "/imports"
    records_key: str = "records"
    poll_interval_s: float = Field(default=1.0, gt=0)
    max_wait_s: float = Field(default=300.0, gt=0)


class DeleteOptions(_Options):
    """``on_delete = "delete"``: ``method path``; ``"property"``: send ``field = value``."""

    method: Literal["DELETE", "POST", "PUT", "PATCH"] = "DELETE"
    path: str | None = None  # default: the upsert path, or the update path in create_or_update
    field: str | None = None
    value: JsonScalar = "deleted"


class RestSinkOptions(_Options):
    base_url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=10.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1, le=256)
    auth: AuthOptions | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    id_field: str = Field(default="id", min_length=1)
    mapping: list[FieldMapping] = Field(min_length=1)
    mode: Literal["upsert", "create_or_update", "bulk"] = "upsert"
    send_all_fields: bool = False
    upsert: UpsertOptions = UpsertOptions()
    create_or_update: CreateOrUpdateOptions = CreateOrUpdateOptions()
    bulk: BulkOptions = BulkOptions()
    on_delete: OnDelete = "ignore"
    delete: DeleteOptions = DeleteOptions()
    default_retry_after_s: float = Field(default=5.0, ge=0)
    state_dir: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RestSinkOptions:
        Mapper.check(self.mapping, self.id_field)
        targets = {item.to_field for item in self.mapping}
        if self.on_delete == "property":
            if not self.delete.field:
                raise ValueError('on_delete = "property" needs delete.field')
            if self.delete.field in targets or self.delete.field == self.id_field:
                raise ValueError("delete.field must not be a mapped field or the id field")
        search = self.create_or_update
        by_email = self.mode == "create_or_update" and search.search_by == "email"
        if by_email and search.email_field not in targets:
            raise ValueError(f"email_field {search.email_field!r} is not a mapped to_field")
        for label, path, names in self._paths():
            try:
                path.format(**dict.fromkeys(names, "x"))
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{label} {path!r} may use only {sorted(names)}") from exc
        return self

    def _paths(self) -> list[tuple[str, str, set[str]]]:
        paths = [("delete.path", self.delete_path(), self._delete_keys())]
        if self.mode == "upsert":
            paths.append(("upsert.path", self.upsert.path, {"id"}))
        elif self.mode == "create_or_update":
            options = self.create_or_update
            paths += [
                ("create_or_update.search_path", options.search_path, set()),
                ("create_or_update.create_path", options.create_path, set()),
                ("create_or_update.update_path", options.update_path, {"id", "contact_id"}),
            ]
        else:
            paths.append(("bulk.path", self.bulk.path, set()))
        return paths

    def _delete_keys(self) -> set[str]:
        return {"id", "contact_id"} if self.mode == "create_or_update" else {"id"}

    def delete_path(self) -> str:
        if self.delete.path is not None:
            return self.delete.path
        if self.mode == "create_or_update":
            return self.create_or_update.update_path
        return self.upsert.path

    def search_param(self) -> str:
        options = self.create_or_update
        if options.search_param:
            return options.search_param
        return options.email_field if options.search_by == "email" else self.id_field


def parse_options(raw: object, name: str) -> RestSinkOptions:
    """Validated options; errors name the option, never echo its (possibly secret) value."""
    try:
        return RestSinkOptions.model_validate(raw)
    except ValidationError as exc:
        # Not chained: pydantic's own message echoes input values, secrets included.
        problems = validation_problems(exc, "sink")
        message = f"rest connector {name}: invalid [sink] options: {problems}"
        raise SinkConfigError(message) from None
