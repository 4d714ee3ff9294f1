"""On the real broker: a worker dead-letters every event holding an integer out of the signed
64-bit range with the reason ``integer_out_of_range`` and applies the events at the edges."""

from __future__ import annotations

from streams.codecs.integers import I64_MAX, I64_MIN
from streams.testing import produce_events, read_topic, read_upserts, wait_until

T0 = 1_700_000_000
OUT = [I64_MIN - 1, I64_MAX + 1, 2**64 - 1, 2**64, 10**30]
EDGES = [I64_MIN, I64_MAX]


def test_integers_out_of_range_are_dead_lettered_with_one_reason(streams_settings, start_worker):
    settings = streams_settings(web_port=0)
    service = start_worker(settings)
    bad = [
        f'{{"customer_id":"c-{n}","source":"web","update_timestamp":{T0},'
        f'"properties":{{"n":{value}}}}}'.encode()
        for n, value in enumerate(OUT)
    ]
    bad.append(f'{{"customer_id":"c-t","source":"web","update_timestamp":{2**64}}}'.encode())
    good = [
        f'{{"customer_id":"e-{n}","source":"web","update_timestamp":{T0},'
        f'"properties":{{"n":{value},"f":1e30}}}}'.encode()
        for n, value in enumerate(EDGES)
    ]
    produce_events(settings, [*bad, *good])
    wait_until(lambda: service.worker.totals.events_in >= len(bad) + len(good), timeout=60)
    wait_until(lambda: len(read_topic(settings, settings.dlq_topic)) == len(bad), timeout=60)
    dead = read_topic(settings, settings.dlq_topic)
    assert sorted(r.value or b"" for r in dead) == sorted(bad)  # the original bytes
    assert {r.headers["dlq.reason"] for r in dead} == {b"integer_out_of_range"}
    upserts = {u.customer_id: u for u in read_upserts(settings)}
    assert sorted(upserts) == ["e-0", "e-1"]
    for n, value in enumerate(EDGES):
        assert upserts[f"e-{n}"].properties["n"][0] == value
        assert upserts[f"e-{n}"].properties["f"][0] == 1e30
    assert service.alive
