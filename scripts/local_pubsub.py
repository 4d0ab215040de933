"""Topics, subscriptions and messages on the Pub/Sub emulator, for a stream on your own machine.

`gcloud pubsub` ignores PUBSUB_EMULATOR_HOST (it goes to Google's service unless its api_endpoint_overrides/pubsub
property points elsewhere, and wants credentials even then), so docs/streaming.md's local run uses this: the
google-cloud-pubsub client that Beam installs in .venv, which goes to the emulator named by PUBSUB_EMULATOR_HOST
(`$(gcloud beta emulators pubsub env-init)` sets it). Without that variable it refuses to
run, so that it never touches a real project.

    .venv/bin/python scripts/local_pubsub.py create TOPIC...       # each topic, and a subscription TOPIC-sub
    ... | .venv/bin/python scripts/local_pubsub.py publish TOPIC   # one message per line of stdin
    .venv/bin/python scripts/local_pubsub.py pull SUBSCRIPTION --count=N   # N messages printed and acknowledged
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

DEFAULT_PROJECT = "local-project"  # what docs/streaming.md starts the emulator with


def create(project: str, topics: list[str]) -> None:
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    for topic in topics:
        paths = (f"projects/{project}/topics/{topic}", f"projects/{project}/subscriptions/{topic}-sub")
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=paths[0])
        with contextlib.suppress(AlreadyExists):
            subscriber.create_subscription(name=paths[1], topic=paths[0], ack_deadline_seconds=60)
        print(f"{paths[0]}  {paths[1]}")


def publish(project: str, topic: str, lines: list[bytes]) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    path = f"projects/{project}/topics/{topic}"
    bodies = [line.rstrip(b"\r\n") for line in lines if line.strip()]
    for future in [publisher.publish(path, body) for body in bodies]:
        future.result()
    print(f"published {len(bodies)} messages to {path}")


def pull(project: str, subscription: str, count: int, timeout_s: float) -> int:
    """Prints `count` messages' bodies, one a line, as they come; 1 if fewer came within `timeout_s`."""
    from google.api_core.exceptions import DeadlineExceeded
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = f"projects/{project}/subscriptions/{subscription}"
    received, deadline = 0, time.monotonic() + timeout_s
    while received < count and time.monotonic() < deadline:
        try:
            response = subscriber.pull(subscription=path, max_messages=count - received, timeout=5)
        except DeadlineExceeded:
            continue
        for message in response.received_messages:
            print(message.message.data.decode("utf-8", errors="replace"), flush=True)
        if response.received_messages:
            subscriber.acknowledge(subscription=path, ack_ids=[m.ack_id for m in response.received_messages])
            received += len(response.received_messages)
    if received < count:
        print(f"{received} of {count} messages on {path} after {timeout_s:g} s", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--project", default=os.environ.get("PUBSUB_PROJECT_ID", DEFAULT_PROJECT))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="topics, each with a subscription <topic>-sub").add_argument("topics", nargs="+")
    commands.add_parser("publish", help="one message per line of stdin").add_argument("topic")
    pulling = commands.add_parser("pull", help="print messages, one a line, and acknowledge them")
    pulling.add_argument("subscription")
    pulling.add_argument("--count", type=int, default=1, help="how many messages to wait for (default 1)")
    pulling.add_argument("--timeout", type=float, default=120, help="seconds to wait for them (default 120)")
    args = parser.parse_args(argv)
    if not os.environ.get("PUBSUB_EMULATOR_HOST"):
        print("PUBSUB_EMULATOR_HOST is not set: run $(gcloud beta emulators pubsub env-init) first", file=sys.stderr)
        return 2
    if args.command == "create":
        create(args.project, args.topics)
    elif args.command == "publish":
        publish(args.project, args.topic, sys.stdin.buffer.readlines())
    else:
        return pull(args.project, args.subscription, args.count, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
