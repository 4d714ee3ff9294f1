"""The crate's allocator and the operating system: its memory must not ask for transparent huge
pages. A region advised ``MADV_HUGEPAGE`` is zeroed 2 MiB at a time on its first touch, and the
processor's batches touch fresh memory all the time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/<pid>/smaps"
)

# A child process: a fresh allocator, whose regions are all the crate's or the interpreter's.
_CHILD = textwrap.dedent(
    """
    import orjson
    from streams.processor.kernel import NativeBatchProcessor
    from streams.processor.records import InputRecord
    from streams.settings import Settings

    settings = Settings(partitions=1)
    kernel = NativeBatchProcessor(settings, lambda p, keys: [None] * len(keys), lambda: 10**12)
    for batch in range(3):
        records = [
            InputRecord(0, batch * 5000 + n, f"c-{n}".encode(), orjson.dumps({
                "customer_id": f"c-{n}", "source": "crm", "event_id": f"e-{batch}-{n}",
                "update_timestamp": 999_000_000 + n,
                "properties": {"city": "Brno" * 50, "n": n, "ltv": n / 7},
            }), 10**12)
            for n in range(5000)
        ]
        result = kernel.process(records)
        assert result.counts.applied == 5000, result.counts
    advised = []
    region = ""
    for line in open("/proc/self/smaps"):
        if not line[0].isupper():
            region = line.strip()
        elif line.startswith("VmFlags:") and " hg" in line:
            advised.append(region)
    print(len(advised))
    for region in advised:
        print(region)
    """
)


def test_the_kernel_leaves_no_region_advised_for_huge_pages() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    count, *regions = done.stdout.splitlines()
    assert count == "0", "regions advised MADV_HUGEPAGE:\n" + "\n".join(regions)
