"""What was delivered to a destination without conditional writes, and what a batch must send.

The sink keeps, per customer, the mapped properties the destination has accepted (value,
last_update, source) and the delete watermark, in a local RocksDB. A batch is folded into that
state with the processor's own merge, so only properties that win against what was delivered
are sent: a replayed or reordered upsert sends nothing stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import orjson
from rocksdict import Options, Rdict, WriteBatch

from streams.connect.records import Rejection, SinkRecord
from streams.connect.sinks.rest.mapping import Mapper, MappingError
from streams.merge import MergePolicy, apply_event, upsert_as_event
from streams.model import Op, Profile, PropertyState, Upsert

OnDelete = Literal["ignore", "delete", "property"]
MAPPING_REASON = "mapping"
UNENCODABLE_REASON = "unencodable"


class DeliveredStore:
    """Per customer id: the delivered profile (mapped properties and watermark), as JSON."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self.path = path
        self._db = Rdict(str(path), options)

    def load(self, customer_ids: Sequence[str]) -> dict[str, Profile]:
        if not customer_ids:
            return {}
        raws = cast(list[bytes | None], self._db.get([cid.encode() for cid in customer_ids]))
        return {cid: decode_profile(raw) for cid, raw in zip(customer_ids, raws, strict=True)}

    def save(self, profiles: Mapping[str, Profile]) -> None:
        """Write every profile in one atomic batch."""
        if not profiles:
            return
        batch = WriteBatch(raw_mode=True)
        for cid, profile in profiles.items():
            batch.put(cid.encode(), encode_profile(profile))
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()


def encode_profile(profile: Profile) -> bytes:
    properties = {name: list(state) for name, state in profile.properties.items()}
    return orjson.dumps({"w": profile.deleted_at, "p": properties})


def decode_profile(raw: bytes | None) -> Profile:
    if raw is None:
        return Profile()
    data = orjson.loads(raw)
    properties = {name: PropertyState(*state) for name, state in data["p"].items()}
    return Profile(properties, data["w"])


@dataclass(slots=True)
class CustomerPlan:
    """What one customer's records in a batch require from the destination."""

    customer_id: str
    before: Profile  # delivered state when the batch started
    after: Profile  # delivered state once the destination accepted this plan
    records: list[SinkRecord] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    deleted: bool = False  # a delete newer than the delivered watermark is in the batch

    def send(self, on_delete: OnDelete, send_all: bool) -> dict[str, PropertyState]:
        """The properties to send: after a delete-and-recreate or with send_all, every one."""
        if send_all or (self.deleted and on_delete == "delete"):
            return dict(self.after.properties)
        return {n: s for n, s in self.after.properties.items() if n in self.changed}

    def has_work(self, on_delete: OnDelete) -> bool:
        live_changes = any(name in self.after.properties for name in self.changed)
        return live_changes or (self.deleted and on_delete != "ignore")


def plan_batch(
    batch: Iterable[SinkRecord], mapper: Mapper, store: DeliveredStore, policy: MergePolicy
) -> tuple[list[CustomerPlan], list[Rejection]]:
    """Fold ``batch`` into the delivered state; plans for customers with something to send."""
    rejected: list[Rejection] = []
    by_customer: dict[str, list[tuple[SinkRecord, Upsert]]] = {}
    for record in batch:
        upsert = record.upsert
        if upsert.op is Op.UPSERT:
            mapped = {name: upsert.properties[name] for name in mapper.select(upsert.properties)}
            if not mapped:
                continue
            values = {name: state.value for name, state in mapped.items()}
            try:
                mapper.fields_of(values)
            except MappingError as exc:
                rejected.append(Rejection(record, MAPPING_REASON, str(exc)))
                continue
            upsert = upsert._replace(properties=mapped)
        if not _encodable(upsert):
            rejected.append(Rejection(record, UNENCODABLE_REASON, "not valid UTF-8 / JSON"))
            continue
        by_customer.setdefault(record.customer_id, []).append((record, upsert))
    stored = store.load(list(by_customer))
    plans: list[CustomerPlan] = []
    for cid, items in by_customer.items():
        before = stored[cid]
        plan = CustomerPlan(cid, before, Profile(dict(before.properties), before.deleted_at))
        for record, upsert in items:
            result = apply_event(plan.after, upsert_as_event(upsert), policy)
            if result.accepted:
                plan.records.append(record)
                plan.changed.update(result.changed)
                plan.deleted = plan.deleted or result.deleted_at is not None
        if plan.records:
            plans.append(plan)
    return plans, rejected


def _encodable(upsert: Upsert) -> bool:
    """Whether the store and a request body can carry it (lone surrogates cannot)."""
    values = [state.value for state in upsert.properties.values()]
    try:
        orjson.dumps([upsert.customer_id, upsert.source, values])
    except orjson.JSONEncodeError:
        return False
    return True
