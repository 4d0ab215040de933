"""Launch checks of Pub/Sub inputs and outputs, against the Pub/Sub emulator: one line for each mistake."""

from __future__ import annotations

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.pubsub_checks import check_subscription, check_topic, is_subscription, is_topic

pytestmark = pytest.mark.emulators


@pytest.mark.parametrize(
    ("value", "subscription", "topic"),
    [
        ("projects/p/subscriptions/images", True, False),
        ("projects/p/topics/predictions", False, True),
        ("gs://bucket/images.txt", False, False),
        ("mnist.images", False, False),
        ("projects/p/subscriptions/a/b", False, False),
        (None, False, False),
    ],
)
def test_paths_are_told_apart(value, subscription, topic):
    assert (is_subscription(value), is_topic(value)) == (subscription, topic)


def test_an_existing_subscription_and_topic_pass(pubsub_emulator):
    topic = pubsub_emulator.topic("checked-topic")
    subscription = pubsub_emulator.subscription("checked-sub", topic)
    assert check_subscription("--input", subscription) == subscription
    assert check_topic("--output", topic) == topic


def test_a_missing_subscription_is_one_line_that_says_how_to_make_it(pubsub_emulator):
    path = f"projects/{pubsub_emulator.project}/subscriptions/never-made"
    with pytest.raises(LaunchError) as raised:
        check_subscription("--input", path)
    assert str(raised.value) == (
        f"--input={path}: no such subscription; create it with "
        "`gcloud pubsub subscriptions create never-made --topic=<topic>`"
    )


def test_a_missing_topic_is_one_line_that_says_how_to_make_it(pubsub_emulator):
    path = f"projects/{pubsub_emulator.project}/topics/never-made_error_records"
    with pytest.raises(LaunchError, match=r"no such topic; create it with `gcloud pubsub topics create never-made_"):
        check_topic("--dead_letter", path)


def test_something_that_is_not_a_subscription_is_refused_before_any_call():
    with pytest.raises(LaunchError, match="not a Pub/Sub subscription; give projects/<project>/subscriptions/<name>"):
        check_subscription("--input", "projects/p/topics/t")


def test_no_credentials_is_one_line_that_says_how_to_get_them(monkeypatch):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(google.auth, "default", no_credentials)  # as on a machine with no ADC, whatever ran before
    path = "projects/p/subscriptions/images"
    with pytest.raises(LaunchError) as raised:
        check_subscription("--input", path)
    assert str(raised.value).startswith(f"--input={path}: no Google Cloud credentials to reach Pub/Sub; run ")
    with pytest.raises(LaunchError) as raised:
        check_topic("--output", "projects/p/topics/predictions")
    assert "no Google Cloud credentials" in str(raised.value)
