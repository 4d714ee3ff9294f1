"""Type stubs of the Rust kernel (native/): what Python code may call in ``streams._native``."""

from collections.abc import Callable, Sequence
from typing import Any

def partition_for(key: bytes, partitions: int) -> int: ...

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
        records: Sequence[tuple[int, int, bytes | None, bytes | None, int, Any]],
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
