"""Proca queue messages to change events: pure functions, no I/O.

The message format follows Proca's own definitions (fixthestatusquo/proca-server:
``proca/lib/proca/stage/message_v2.ex`` and ``stage/event.ex``; the ``@proca/queue`` package's
``queueMessage.ts`` types): an action message carries ``schema`` ``"proca:action:2"`` (or the
older ``"proca:action:1"``), ``stage`` (``confirm``/``deliver``), ``actionId``, ``actionPage``,
``campaign``, ``action`` (``actionType``, ``customFields``, ``createdAt``, ``testing``),
``contact`` (``email``, ``firstName``, ``contactRef`` and the other PII fields: ``lastName``,
``phone``, ``country``, ``postcode``, ``area``, ``address``), ``privacy`` (``optIn``, ``givenAt``,
``emailStatus``, ``emailStatusChanged``) and ``tracking`` (utm fields). An event message carries
``schema`` ``"proca:event:2"``, ``eventType`` and ``timestamp``; ``email_status`` events (double
opt-in confirmed, bounce, blocked, spam, unsub) carry ``supporter.contact`` and
``supporter.privacy``. Email is the identity; ``contactRef`` is Proca's email hash,
``base64url(sha256(fpr_seed <> email))`` without padding (``Proca.Contact.BasicData``).

Every event is stamped with the message's own time (action ``createdAt``, consent ``givenAt``,
``emailStatusChanged`` or the event ``timestamp``), never the time it is consumed, and its
``event_id`` derives from the message, so a redelivered message yields identical events.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.codecs.events import change_event
from streams.codecs.integers import dumps_event, loads_exact
from streams.codecs.timestamps import to_epoch_ms
from streams.emails import is_email
from streams.errors import InvalidEventError

ACTION_SCHEMAS = frozenset({"proca:action:1", "proca:action:2"})
EVENT_SCHEMA = "proca:event:2"
# What an email status says about consent: confirmed, or do not (or cannot) contact.
OPT_IN_BY_STATUS = {
    "double_opt_in": True,
    "bounce": False,
    "blocked": False,
    "spam": False,
    "unsub": False,
}
# "none" (Proca's guide) and "" mean no knowledge yet: never let them overwrite a known status.
NO_STATUS = frozenset({"", "none"})
# Contact keys that are identity or encryption envelope, not profile properties.
_CONTACT_SKIP = frozenset(
    {"email", "contactRef", "ref", "payload", "signKey", "publicKey", "nonce"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass(frozen=True, slots=True)
class ProcaOptions:
    source: str = "proca"
    skip_testing: bool = True
    custom_field_prefix: str | None = None
    contact_ref_seed: str = ""


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one message becomes: ``kind`` action/email_status/ignored and its events."""

    kind: str
    events: tuple[dict[str, Any], ...] = ()
    note: str = ""


def map_message(body: bytes, options: ProcaOptions) -> Mapped:
    """Events for one queue message; raises :class:`InvalidEventError` for a bad message."""
    try:
        doc = loads_exact(body)  # integers exact: one out of range is refused
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError("bad_json", f"{exc.msg} at char {exc.pos}") from exc
    if not isinstance(doc, dict):
        raise InvalidEventError("not_an_object", f"top level is {type(doc).__name__}")
    schema = doc.get("schema")
    if schema in ACTION_SCHEMAS:
        return _map_action(doc, options)
    if schema == EVENT_SCHEMA:
        if doc.get("eventType") == "email_status":
            return _map_email_status(doc, options)
        return Mapped("ignored", note=f"event type {str(doc.get('eventType'))[:40]}")
    raise InvalidEventError("unknown_schema", f"schema {str(schema)[:40]!r} is not a Proca schema")


def normalize_email(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEventError("missing_email", "the message has no email")
    email = raw.strip()
    if not is_email(email):  # before lower(): the Kelvin sign lowers to an ASCII k
        raise InvalidEventError("bad_email", "the email is not an address")
    return email.lower()


def contact_ref_for(email: str, seed: str = "") -> str:
    """Proca's supporter fingerprint: base64url(sha256(seed + email)), unpadded."""
    digest = hashlib.sha256(seed.encode() + email.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _map_action(doc: dict[str, Any], options: ProcaOptions) -> Mapped:
    action = _object(doc, "action")
    if options.skip_testing and action.get("testing") is True:
        return Mapped("ignored", note="testing action")
    contact = _contact(doc)
    email = normalize_email(contact.get("email"))
    created_ms = _time(action.get("createdAt"), "action.createdAt")
    properties: dict[str, Any] = {"email": email, "contact_ref": _ref(contact, email, options)}
    properties.update(_contact_properties(contact))
    campaign, page, tracking = (_optional(doc, k) for k in ("campaign", "actionPage", "tracking"))
    properties.update(
        {
            "last_action_id": _scalar(doc.get("actionId")),
            "last_action_type": _scalar(action.get("actionType")),
            "last_action_at": _iso(created_ms),
            "last_campaign": _scalar(campaign.get("name")),
            "last_action_page": _scalar(page.get("name")),
            "last_action_page_id": _scalar(doc.get("actionPageId")),
            "locale": _scalar(page.get("locale")),
        }
    )
    for field in ("source", "medium", "campaign", "content"):
        properties[f"last_utm_{field}"] = _scalar(tracking.get(field))
    if options.custom_field_prefix is not None:
        fields = action.get("customFields") or action.get("fields") or {}
        if isinstance(fields, dict):
            for name, value in fields.items():
                properties[options.custom_field_prefix + _snake(str(name))] = _flat(value)
    properties = {k: v for k, v in properties.items() if v is not None}
    stamps = _privacy(_optional(doc, "privacy"), properties, created_ms)
    stage = doc.get("stage") if isinstance(doc.get("stage"), str) else "deliver"
    action_id = doc.get("actionId")
    ident = (
        str(action_id)
        if action_id is not None
        else hashlib.sha256(dumps_event(doc)).hexdigest()[:20]
    )
    event_id = f"proca:action:{ident}:{stage}"
    event = change_event(
        email,
        options.source,
        created_ms / 1000,
        properties,
        property_timestamps=stamps,
        event_id=event_id,
    )
    return Mapped("action", (event,))


def _map_email_status(doc: dict[str, Any], options: ProcaOptions) -> Mapped:
    supporter = _object(doc, "supporter")
    contact = _object(supporter, "contact")
    privacy = _optional(supporter, "privacy")
    email = normalize_email(contact.get("email"))
    status = privacy.get("emailStatus")
    if status is not None and not isinstance(status, str):
        raise InvalidEventError("bad_type", "supporter.privacy.emailStatus must be a string")
    if status in NO_STATUS:
        status = None  # an explicit reset to "no knowledge"
    changed = privacy.get("emailStatusChanged") or doc.get("timestamp")
    if changed is None:
        raise InvalidEventError("missing_timestamp", "no emailStatusChanged nor timestamp")
    at_ms = _time(changed, "emailStatusChanged")
    ref = _ref(contact, email, options)
    properties: dict[str, Any] = {
        "email": email,
        "contact_ref": ref,
        "email_status": status,
        "email_status_at": _iso(at_ms),
    }
    if status in OPT_IN_BY_STATUS:
        properties["email_opt_in"] = OPT_IN_BY_STATUS[status]
    event_id = f"proca:email_status:{ref}:{status}:{at_ms}"
    event = change_event(email, options.source, at_ms / 1000, properties, event_id=event_id)
    return Mapped("email_status", (event,))


def _privacy(
    privacy: dict[str, Any], properties: dict[str, Any], default_ms: int
) -> dict[str, float]:
    """Consent properties (added to ``properties``) and their own timestamps, in seconds."""
    stamps: dict[str, float] = {}
    opt_in = privacy.get("optIn", privacy.get("communication"))
    if isinstance(opt_in, bool):
        properties["email_opt_in"] = opt_in
        if privacy.get("givenAt"):
            stamps["email_opt_in"] = _time(privacy["givenAt"], "privacy.givenAt") / 1000
    status = privacy.get("emailStatus")
    if isinstance(status, str) and status not in NO_STATUS:
        at_ms = default_ms
        if privacy.get("emailStatusChanged"):
            at_ms = _time(privacy["emailStatusChanged"], "privacy.emailStatusChanged")
        properties["email_status"] = status
        properties["email_status_at"] = _iso(at_ms)
        stamps["email_status"] = stamps["email_status_at"] = at_ms / 1000
        if status in OPT_IN_BY_STATUS:
            properties["email_opt_in"] = OPT_IN_BY_STATUS[status]  # a status outranks the form
            stamps["email_opt_in"] = at_ms / 1000
    return stamps


def _contact(doc: dict[str, Any]) -> dict[str, Any]:
    contact = dict(_object(doc, "contact"))
    payload = contact.get("payload")
    # Version 1 carries the PII as JSON text in ``payload`` unless it is encrypted (nonce).
    if isinstance(payload, str) and payload and not contact.get("nonce"):
        try:
            pii = loads_exact(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidEventError("bad_json", "contact.payload is not JSON") from exc
        if isinstance(pii, dict):
            contact = {**pii, **{k: v for k, v in contact.items() if v not in (None, "")}}
    return contact


def _contact_properties(contact: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar PII fields in snake_case, one nested level (``address``) flattened; nulls
    are left out: a form without a phone number says nothing about the stored one."""
    out: dict[str, Any] = {}
    for name, value in contact.items():
        if name in _CONTACT_SKIP or value is None:
            continue
        key = _snake(str(name))
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if _is_scalar(inner_value) and inner_value is not None:
                    out[f"{key}_{_snake(str(inner))}"] = inner_value
        elif _is_scalar(value):
            out[key] = value
    return out


def _ref(contact: Mapping[str, Any], email: str, options: ProcaOptions) -> str:
    ref = contact.get("contactRef") or contact.get("ref")
    return ref if isinstance(ref, str) and ref else contact_ref_for(email, options.contact_ref_seed)


def _object(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise InvalidEventError("bad_type", f"{name} must be an object")
    return value


def _optional(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def _time(value: object, field: str) -> int:
    if value is None or value == "":
        raise InvalidEventError("missing_timestamp", f"{field} is missing")
    return to_epoch_ms(value, field)


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _scalar(value: object) -> Any:
    return value if _is_scalar(value) else None


def _flat(value: object) -> Any:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return value if _is_scalar(value) else dumps_event(value).decode()
