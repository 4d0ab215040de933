"""Streaming jobs in this process on Beam's local runner, fed and read through the Pub/Sub emulator."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.config import JobConfig
from pipeline.job.graph import build
from pipeline.launch.validation import validate
from tests.emulators import PubSubEmulator


@dataclass
class Stream:
    """A topic to publish records to, the subscription the job reads, and topics it writes with subscriptions."""

    emulator: PubSubEmulator
    name: str
    topic: str = ""
    subscription: str = ""
    output: str = ""
    dead_letters: str = ""
    _outputs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.topic = self.emulator.topic(f"{self.name}-in")
        self.subscription = self.emulator.subscription(f"{self.name}-in-sub", self.topic)
        self.output = self.emulator.topic(f"{self.name}-out")
        self.dead_letters = self.emulator.topic(f"{self.name}-out_error_records")
        for topic in (self.output, self.dead_letters):
            self._outputs[topic] = self.emulator.subscription(f"{topic.rsplit('/', 1)[1]}-sub", topic)

    def publish(self, bodies: list[bytes]) -> None:
        publisher = self.emulator.publisher()
        for future in [publisher.publish(self.topic, body) for body in bodies]:
            future.result()

    def receive(self, topic: str, count: int, timeout_s: float = 60) -> list[dict]:
        """The JSON rows of `count` messages published to `topic` (fails after `timeout_s`)."""
        subscriber = self.emulator.subscriber()
        rows: list[dict] = []
        deadline = time.monotonic() + timeout_s
        while len(rows) < count and time.monotonic() < deadline:
            response = subscriber.pull(subscription=self._outputs[topic], max_messages=1000, timeout=5)
            if response.received_messages:
                rows += [json.loads(message.message.data) for message in response.received_messages]
                ack_ids = [message.ack_id for message in response.received_messages]
                subscriber.acknowledge(subscription=self._outputs[topic], ack_ids=ack_ids)
        assert len(rows) >= count, f"{len(rows)} of {count} messages on {topic} after {timeout_s} s"
        return rows

    def nothing_more(self, topic: str, wait_s: float = 2) -> bool:
        time.sleep(wait_s)
        response = self.emulator.subscriber().pull(subscription=self._outputs[topic], max_messages=10, timeout=5)
        return not response.received_messages


@contextlib.contextmanager
def streaming_job(*args: str) -> Iterator[JobConfig]:
    """Validates and starts a streaming job in this process (the launch's own checks first), yields its
    config while it runs, and cancels it after."""
    options = PipelineOptions(list(args))
    config = validate(options)
    assert config.streaming
    options.view_as(StandardOptions).streaming = True
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config)
    result = pipeline.run()
    try:
        yield config
    finally:
        result.cancel()


def lines_of(images: np.ndarray, first_key: int = 0) -> list[bytes]:
    """Images as the 2017 sample's `key:v0,v1,...` message bodies, keys from `first_key`."""
    return [f"{first_key + key}:{','.join(map(str, image))}".encode() for key, image in enumerate(images)]


def eventually(check: Callable[[], bool], timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False
