"""Launch-time checks of Pub/Sub inputs and outputs: the subscription to read and the topics to write
exist, so that a streaming job does not start only to fail on its first message."""

from __future__ import annotations

import re

from google.api_core import exceptions
from google.auth.exceptions import DefaultCredentialsError

from pipeline.errors import LaunchError, first_line
from pipeline.job.retries import retrying

_SUBSCRIPTION = re.compile(r"^projects/(?P<project>[^/]+)/subscriptions/(?P<name>[^/]+)$")
_TOPIC = re.compile(r"^projects/(?P<project>[^/]+)/topics/(?P<name>[^/]+)$")


def is_subscription(value: str | None) -> bool:
    return bool(value and _SUBSCRIPTION.match(value.strip()))


def is_topic(value: str | None) -> bool:
    return bool(value and _TOPIC.match(value.strip()))


def check_subscription(flag: str, path: str) -> str:
    """The subscription exists (it keeps what is published between launches); returns its path."""
    from google.cloud.pubsub import SubscriberClient

    if not is_subscription(path):
        raise LaunchError(f"{flag}={path}: not a Pub/Sub subscription; give projects/<project>/subscriptions/<name>")
    try:
        with SubscriberClient() as client:
            retrying(lambda: client.get_subscription(subscription=path), "subscriptions.get")
    except exceptions.NotFound:
        raise LaunchError(
            f"{flag}={path}: no such subscription; create it with "
            f"`gcloud pubsub subscriptions create {_name(path)} --topic=<topic>`"
        ) from None
    except exceptions.GoogleAPICallError as error:
        raise LaunchError(f"{flag}={path}: cannot read the subscription: {first_line(error)}") from None
    except DefaultCredentialsError:
        raise _no_credentials(flag, path) from None
    return path


def check_topic(flag: str, path: str) -> str:
    """The topic exists (a streaming job does not create topics); returns its path."""
    from google.cloud.pubsub import PublisherClient

    if not is_topic(path):
        raise LaunchError(f"{flag}={path}: not a Pub/Sub topic; give projects/<project>/topics/<name>")
    try:
        retrying(lambda: PublisherClient().get_topic(topic=path), "topics.get")
    except exceptions.NotFound:
        raise LaunchError(
            f"{flag}={path}: no such topic; create it with `gcloud pubsub topics create {_name(path)}`"
        ) from None
    except exceptions.GoogleAPICallError as error:
        raise LaunchError(f"{flag}={path}: cannot reach the topic: {first_line(error)}") from None
    except DefaultCredentialsError:
        raise _no_credentials(flag, path) from None
    return path


def _no_credentials(flag: str, path: str) -> LaunchError:
    return LaunchError(
        f"{flag}={path}: no Google Cloud credentials to reach Pub/Sub; run `gcloud auth application-default login`, "
        "or, for the local emulator, `$(gcloud beta emulators pubsub env-init)` first"
    )


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
