"""Type stubs of the Rust kernel (native/): what Python code may call in ``streams._native``."""

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from streams.model import Profile, Upsert

_Record = TypeVar("_Record")

def partition_for(key: bytes, partitions: int) -> int: ...
def input_records(messages: list[Any], input_record: type[_Record], records: list[_Record]) -> bool:
    """Appends the confluent-kafka messages' input records to ``records``; False (and nothing
    appended) when a message carries an error."""

def raw_records(messages: list[Any], raw_record: type[_Record], records: list[_Record]) -> bool:
    """Appends the confluent-kafka messages' ``RawRecord``s (a connector's batch) to
    ``records``, untracked by the cycle collector, as are the messages; False (and nothing
    appended) when a message carries an error."""

def changelog_records(
    topic: str, states: dict[int, dict[bytes, bytes]], output_record: type[_Record]
) -> list[_Record]:
    """A batch's new states as the changelog's records (output records of ``topic``)."""

def produce_records(
    produce: Callable[..., None], records: list[Any], on_delivery: Callable[..., None], start: int
) -> int:
    """``produce(topic, value, key, partition, on_delivery)`` for ``records[start:]`` (output
    records) in order, up to the first with headers or a timestamp or whose ``produce`` raised;
    returns its index, ``len(records)`` when all were produced."""

def copy_rows(singles: dict[str, Upsert], profiles: dict[str, Profile]) -> bytes | None:
    """The PostgreSQL sink's staging rows as COPY text: one line (customer id, properties,
    last_update, source, stamps, deleted_at) per row FoldedBatch.rows yields, in its order; None
    when a value is not one the Rust code writes exactly."""

def suspect_upserts(upserts: list[Upsert]) -> list[int]:
    """The positions of the upserts ``copy_rows`` might not write exactly: every one the
    PostgreSQL sink's ``refusal`` refuses is among them."""

class Contributors:
    def table(self) -> dict[tuple[int, bytes], list[int]]: ...

class Kernel:
    def __init__(
        self,
        *,
        max_event_bytes: int,
        max_properties: int,
        max_clock_skew_ms: int,
        partitions: int,
        priorities: dict[str, int],
        output_format: str,
        change_schemas: list[tuple[bytes, str]],
        upsert_schema: tuple[bytes, str],
        max_state_bytes: int,
        output_record: type,
        upserts_topic: str,
        stale_topic: str,
    ) -> None: ...
    def process(
        self,
        records: list[Any],  # InputRecord tuples (a list: they are untracked by the GC)
        parked: list[bool],
        now_ms: int,
        load_states: Callable[[int, list[bytes]], list[bytes | None]],
        decode_reference: Callable[[int], Any],
    ) -> tuple[
        list[Any],
        list[tuple[int, int, int, Any, Any]],
        dict[int, dict[bytes, bytes]],
        tuple[int, int, int, int, int, int],
        dict[str, int],
        dict[int, int],
        Contributors,
    ]: ...

class UpsertDecoder(Generic[_Record]):
    """Reads upserts (streams/codecs/upserts.py) into ``upsert`` and ``property_state`` records:
    Avro in the schema given, the current one, if the crate knows it, and JSON."""

    def __init__(
        self,
        *,
        schema: tuple[bytes, str],  # (fingerprint, parsing canonical form)
        upsert: type[_Record],
        property_state: type,
        ops: tuple[Any, Any],  # (UPSERT, DELETE)
    ) -> None: ...
    def decode(self, data: bytes) -> _Record | None:
        """The upsert, or None for anything the Python reference is left to decode (another
        schema version, a malformed message, a number or a shape it might read otherwise)."""
    def copy_text(
        self, values: list[bytes], shares: int
    ) -> tuple[list[bytes], list[int], list[list[int]]] | None:
        """The PostgreSQL sink's staging rows straight from the messages: per share its COPY
        text (the rows ``upsert_row`` makes of the customers with one plain, storable upsert
        in the batch), the positions left to the Python fold (deletes, repeated customers,
        what ``refusal`` might refuse), and per share the positions behind its rows. None
        when a message is not one the crate reads (the batch is then decoded in Python)."""

class CsvFast:
    """The submodule ``streams._native.csvfast`` (native/src/csvfast/): the bootstrap's CSV and
    JSONL converter and its duplicate index. A stub cannot declare an extension's submodule, so
    its interface is this class's; the name exists for type checking only."""

    class KeyIndex:
        """Duplicate ids: per id the newest row (update time, else line) and the losers."""

        def add(
            self,
            keys: Sequence[bytes],
            lines: Sequence[int],
            stamps: Sequence[float | None] | None,
        ) -> None: ...
        def losses(self) -> list[tuple[int, int, bool]]:
            """(line, kept_line, same_time) of every row that lost so far, by line."""

    class Converter:
        """Snapshot rows to change events (see streams/bootstrap/native.py); ``delimiter``
        None reads JSONL."""

        def __init__(
            self,
            columns: Sequence[str],
            delimiter: int | None,
            fragments: tuple[bytes, ...],
            slots: tuple[tuple[int, int], ...],
            removal: tuple[int, bool] | None,
            since: tuple[int, float] | None,
            latest: float,
            max_bytes: int,
            miss: Callable[[int, list[bytes]], list[Any]],
            memo_limit: int,
        ) -> None: ...
        def feed(self, data: bytes, last: bool) -> None: ...
        def buffered(self) -> int: ...
        def convert(
            self, rows: int, index: CsvFast.KeyIndex | None = None
        ) -> tuple[
            list[bytes],
            list[bytes],
            list[int],
            list[float] | None,
            list[tuple[int, Any]],
            list[tuple[int, int]],
            int,
            int,
            int,
        ]:
            """(keys, payloads, lines, stamps, fallback, bad, skipped, read, last_line):
            fallback holds (line, cells) of CSV rows or (line, raw line) of JSONL ones for the
            Python converter, bad (line, fields) of CSV records of another width; read is 0
            when the bytes fed hold no complete row. A CSV record that is not UTF-8 raises
            ValueError("not UTF-8", its line)."""

csvfast: CsvFast
