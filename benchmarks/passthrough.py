"""Contender (a): the ceiling. Batched consume, copy every record to an output topic, final
flush, then commit. The same librdkafka settings as the processor's clients."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, Producer

from benchmarks.common import Result, Spec, contender_main, now
from benchmarks.data import create_topic
from streams.kafka.clients import consumer_config, producer_config
from streams.settings import Settings

BATCH = 5000
WAIT_SECONDS = 0.05


def run(spec: Spec) -> Result:
    output = f"bench-passthrough-{spec.run_id}"
    create_topic(spec.bootstrap, output)
    settings = Settings(
        kafka_bootstrap_servers=spec.bootstrap,
        input_topic=spec.input_topic,
        group_id=f"bench-passthrough-{spec.run_id}",
    )
    # Offsets are stored as consumed, so the final commit covers everything copied.
    consumer = Consumer(
        consumer_config(
            settings, **{"client.id": "bench-passthrough", "enable.auto.offset.store": True}
        )
    )
    producer = Producer(producer_config(settings, **{"client.id": "bench-passthrough"}))
    errors: list[str] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(str(error))

    consumer.subscribe([spec.input_topic])
    produce, poll = producer.produce, producer.poll
    count = 0
    started: float | None = None
    deadline = now() + spec.timeout
    try:
        while count < spec.events:
            if now() > deadline:
                return Result(count, 0.0, error=f"timed out after {count} records")
            messages = consumer.consume(BATCH, WAIT_SECONDS)
            if not messages:
                continue
            if started is None:
                started = now()
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                partition = message.partition()
                assert partition is not None
                while True:
                    try:
                        produce(
                            output,
                            value=message.value(),
                            key=message.key(),
                            partition=partition,
                            on_delivery=on_delivery,
                        )
                        break
                    except BufferError:
                        poll(0.05)
                count += 1
            poll(0)
        remaining = producer.flush(120)
        consumer.commit(asynchronous=False)
        finished = now()
    finally:
        consumer.close()
    if remaining or errors:
        return Result(count, 0.0, error=f"{remaining} undelivered, errors: {errors[:3]}")
    assert started is not None
    return Result(count, finished - started, details={"output_topic": output})


if __name__ == "__main__":
    contender_main(run)
