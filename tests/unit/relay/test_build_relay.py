"""build_relay(settings, store): the composition hook the workers call (no I/O until run)."""

from __future__ import annotations

import pytest

from cairn.relay import RelayError, UnsupportedBrokerURL, build_relay, jetstream_stream_name
from cairn.settings import Settings
from cairn.store.memory import MemoryEventStore


def test_no_relay_without_a_broker_url() -> None:
    assert build_relay(Settings(database_url="memory://"), MemoryEventStore()) is None


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("nats://127.0.0.1:4222", "nats"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp"),
        ("redis://127.0.0.1:6379/0", "redis"),
        ("kafka://127.0.0.1:9092,127.0.0.1:9093", "kafka"),
    ],
)
def test_the_broker_is_chosen_by_url_scheme(url: str, kind: str) -> None:
    relay = build_relay(Settings(database_url="memory://", broker_url=url), MemoryEventStore())
    assert relay is not None
    assert relay.publisher.kind == kind
    assert relay.publisher.topic == "cairn.events"


def test_an_unknown_broker_scheme_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedBrokerURL, match="nats://, amqp://, redis:// or kafka://"):
        build_relay(Settings(database_url="memory://", broker_url="mqtt://x"), MemoryEventStore())
    assert issubclass(UnsupportedBrokerURL, RelayError)


def test_status_never_shows_credentials() -> None:
    settings = Settings(database_url="memory://", broker_url="amqp://user:secret@host:5672/vh")
    relay = build_relay(settings, MemoryEventStore())
    assert relay is not None
    assert relay.publisher.describe() == "amqp://host:5672"


def test_jetstream_stream_name_is_the_topic_upper_cased_with_underscores() -> None:
    assert jetstream_stream_name("cairn.events") == "CAIRN_EVENTS"
