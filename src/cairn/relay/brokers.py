"""One publisher per broker, chosen by URL scheme: ``nats://``, ``amqp://``, ``redis://``,
``kafka://`` (:mod:`cairn.relay.kafka`).

Every publisher has the same small contract: :meth:`Publisher.send` writes a batch in order,
pipelined, and returns a future that resolves only once the broker has confirmed *every* message
of it. When it cannot, it fails with :class:`PublishError` carrying how many leading messages were
confirmed, so the relay can move its checkpoint over exactly that prefix and never past an
unconfirmed event.

Order: each publisher writes the batch on one connection (one channel for AMQP, one pipeline
for Redis) in position order and the broker appends in arrival order, so per stream the
broker sees version order even though confirmations are awaited concurrently.

Reconnecting is the relay's job: on any failure it closes the publisher, backs off and connects
again, so there is one retry policy (the relay's) and no publishes buffered by a dead connection
racing the new one. (NATS and AMQP connections are opened without client-side auto-reconnect;
redis-py's pool is discarded with the client.)
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from cairn.errors import PublishError, UnsupportedBrokerURL
from cairn.relay.cloudevents import CONTENT_TYPE, OutgoingMessage

#: How long a batch may wait for its confirmations before the relay gives up on it.
DEFAULT_CONFIRM_TIMEOUT: Final = 10.0
DEFAULT_CONNECT_TIMEOUT: Final = 3.0


class Publisher(ABC):
    """Puts :class:`OutgoingMessage` batches on one broker, confirmed, in order."""

    kind: ClassVar[str]

    def __init__(self, url: str, topic: str, *, confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT):
        self.url = url
        self.topic = topic
        self.confirm_timeout = confirm_timeout

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection and declare what SPEC §6 says must exist. Raises if unreachable."""

    @abstractmethod
    async def send(self, messages: Sequence[OutgoingMessage]) -> asyncio.Future[None]:
        """Put ``messages`` on the wire in order, after anything sent before; return a future
        that resolves once the broker confirmed every one of them, or fails with
        :class:`PublishError` carrying the confirmed prefix length. Raises
        :class:`PublishError` itself if the messages could not even be sent.

        The relay keeps a couple of batches in flight this way, so the broker works on one
        batch while the next is encoded and written.
        """

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send ``messages`` and wait for every confirmation (raises :class:`PublishError`)."""
        await (await self.send(messages))

    @abstractmethod
    async def close(self) -> None:
        """Drop the connection. Idempotent; never raises."""

    def describe(self) -> str:
        """The URL without credentials, for status and logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"


def _confirmed_prefix(futures: Sequence[asyncio.Future[Any]]) -> int:
    """How many leading futures completed successfully."""
    count = 0
    for future in futures:
        if not future.done() or future.cancelled() or future.exception() is not None:
            break
        count += 1
    return count


async def _await_all(futures: Sequence[asyncio.Future[Any]], timeout: float, what: str) -> None:
    """Wait for every confirmation; on failure raise PublishError with the confirmed prefix.

    Leftover futures are cancelled and failed ones have their exception retrieved, so nothing
    lingers or logs "exception was never retrieved" after the relay moves on.
    """
    if not futures:
        return
    try:
        _, pending = await asyncio.wait(
            futures, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION
        )
    except asyncio.CancelledError:
        # The relay abandoned this batch: stop its publishes too, so none is left running.
        for future in futures:
            future.cancel()
        raise
    failure: BaseException | None = None
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is not None:
            failure = failure or future.exception()
    if not pending and failure is None:
        return
    confirmed = _confirmed_prefix(futures)
    for future in pending:
        future.cancel()
    reason = repr(failure) if failure is not None else f"no confirmation within {timeout:g} s"
    raise PublishError(
        f"{what}: {confirmed} of {len(futures)} messages confirmed; {reason}", confirmed
    )


# --- NATS JetStream --------------------------------------------------------------------------


def jetstream_stream_name(topic: str) -> str:
    """SPEC §6: the topic upper-cased with ``.`` replaced by ``_`` (``CAIRN_EVENTS``)."""
    return topic.upper().replace(".", "_")


class _AckTracker:
    """Confirmations of one JetStream batch, by index: a flag per message and one future that
    resolves when all are acked or one is refused (cheaper than a future per message)."""

    def __init__(self, size: int) -> None:
        self.acked = [False] * size
        self.remaining = size
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ack(self, index: int) -> None:
        if 0 <= index < len(self.acked) and not self.acked[index]:
            self.acked[index] = True
            self.remaining -= 1
            if self.remaining == 0 and not self.done.done():
                self.done.set_result(None)

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)

    def confirmed_prefix(self) -> int:
        try:
            return self.acked.index(False)
        except ValueError:
            return len(self.acked)


class NatsPublisher(Publisher):
    """JetStream publishes, pipelined: every message of a batch goes out with its own reply
    subject ``<inbox>.<batch>.<index>`` and the acks come back to one subscription."""

    kind = "nats"

    def __init__(self, url: str, topic: str, **kwargs: Any) -> None:
        super().__init__(url, topic, **kwargs)
        self._nc: Any = None
        self._reply_prefix = ""
        self._batch = 0
        self._trackers: dict[str, _AckTracker] = {}

    async def connect(self) -> None:
        import nats
        from nats.errors import NoServersError
        from nats.js.api import StorageType
        from nats.js.errors import NotFoundError

        failures: list[BaseException] = []

        async def _note(error: BaseException) -> None:
            failures.append(error)

        async def _lost(*_: Any) -> None:
            # Fail the batches in flight now rather than at their confirm timeout.
            for tracker in list(self._trackers.values()):
                tracker.fail(ConnectionError("connection to NATS lost"))

        # allow_reconnect=False: a dead connection fails the batch at once and the relay owns
        # the retry policy (see the module docstring). Subject validation is skipped because
        # every subject is built from routing_token()-sanitised parts (no spaces, no CR/LF).
        # max_reconnect_attempts, reconnect_time_wait: nats-py retries even the first connect
        # (60 times, 2 s apart: two minutes before an unreachable server is reported, as
        # "no servers available"); here one quick retry, then the cause is raised.
        try:
            self._nc = await nats.connect(
                self.url,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                connect_timeout=int(DEFAULT_CONNECT_TIMEOUT),
                error_cb=_note,
                disconnected_cb=_lost,
                closed_cb=_lost,
                skip_subject_validation=True,
            )
        except NoServersError:
            cause = failures[-1] if failures else None
            raise ConnectionError(
                f"cannot connect to NATS at {self.describe()}: {cause!r}"
            ) from cause
        js = self._nc.jetstream()
        name = jetstream_stream_name(self.topic)
        try:
            await js.stream_info(name)
        except NotFoundError:
            # File storage and the server's default 2-minute duplicate window (SPEC §6): the
            # window is what makes a re-published unconfirmed tail exactly-once on the stream.
            await js.add_stream(name=name, subjects=[f"{self.topic}.>"], storage=StorageType.FILE)
        self._reply_prefix = self._nc.new_inbox() + "."
        await self._nc.subscribe(self._reply_prefix + ">", cb=self._on_ack)

    async def _on_ack(self, msg: Any) -> None:
        batch, _, index = msg.subject[len(self._reply_prefix) :].partition(".")
        tracker = self._trackers.get(batch)
        if tracker is None:
            return  # a late ack of an abandoned batch
        data: bytes = msg.data or b""
        status = (msg.headers or {}).get("Status")
        if status == "503":
            tracker.fail(PublishError(f"no JetStream stream for {self.topic}.>", 0))
        elif b'"error"' in data:
            tracker.fail(PublishError(f"JetStream refused a message: {data[:300]!r}", 0))
        elif not data:
            tracker.fail(PublishError(f"unexpected JetStream reply (status {status})", 0))
        else:
            tracker.ack(int(index))

    async def send(self, messages: Sequence[OutgoingMessage]) -> asyncio.Future[None]:
        nc = self._nc
        if nc is None:
            raise PublishError("not connected to NATS", 0)
        self._batch += 1
        batch = str(self._batch)
        tracker = self._trackers[batch] = _AckTracker(len(messages))
        prefix = f"{self._reply_prefix}{batch}."
        subject_prefix = self.topic + "."
        try:
            # Sequential awaits on one connection: the stream stores the messages in position
            # order; the acks are awaited together by the returned future.
            for index, message in enumerate(messages):
                headers = {"Nats-Msg-Id": message.id, "Content-Type": CONTENT_TYPE}
                if message.headers:
                    headers.update(message.headers)
                await nc.publish(
                    subject_prefix + message.routing_key,
                    message.body,
                    reply=prefix + str(index),
                    headers=headers,
                )
        except Exception as exc:
            self._trackers.pop(batch, None)
            tracker.fail(exc)
            tracker.done.exception()  # retrieved: reported here
            confirmed = tracker.confirmed_prefix()
            raise PublishError(
                f"NATS publish failed after {confirmed}: {exc!r}", confirmed
            ) from exc
        return asyncio.ensure_future(self._confirmed(batch, tracker))

    async def _confirmed(self, batch: str, tracker: _AckTracker) -> None:
        try:
            if tracker.remaining:
                await asyncio.wait_for(asyncio.shield(tracker.done), self.confirm_timeout)
            elif tracker.done.done():
                tracker.done.result()
        except Exception as exc:
            confirmed = tracker.confirmed_prefix()
            if tracker.done.done() and not tracker.done.cancelled():
                tracker.done.exception()  # retrieved: reported below
            else:
                tracker.done.cancel()
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"no JetStream ack within {self.confirm_timeout:g} s")
            size = len(tracker.acked)
            raise PublishError(
                f"NATS: {confirmed} of {size} messages confirmed; {exc!r}", confirmed
            ) from exc
        finally:
            self._trackers.pop(batch, None)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        for tracker in self._trackers.values():
            tracker.fail(ConnectionError("publisher closed"))
        self._trackers = {}
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()


# --- RabbitMQ --------------------------------------------------------------------------------


class AmqpPublisher(Publisher):
    kind = "amqp"

    def __init__(self, url: str, topic: str, **kwargs: Any) -> None:
        super().__init__(url, topic, **kwargs)
        self._connection: Any = None
        self._channel: Any = None

    async def connect(self) -> None:
        import aio_pika

        self._connection = await aio_pika.connect(self.url, timeout=DEFAULT_CONNECT_TIMEOUT)
        channel = await self._connection.channel(publisher_confirms=True)
        # Durable, not auto-delete, no arguments (SPEC §6): consumers bind their own queues.
        await channel.declare_exchange(
            self.topic, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
        )
        # Publishing goes through the underlying aiormq channel: aio-pika's Exchange.publish
        # waits for each frame to be written before the next can start, which caps a batch at a
        # few thousand messages per second.
        self._channel = await channel.get_underlay_channel()

    async def send(self, messages: Sequence[OutgoingMessage]) -> asyncio.Future[None]:
        from aiormq import spec

        channel = self._channel
        if channel is None:
            raise PublishError("not connected to RabbitMQ", 0)

        async def confirmed(message: OutgoingMessage) -> None:
            result = await channel.basic_publish(
                message.body,
                exchange=self.topic,
                routing_key=message.routing_key,
                properties=spec.Basic.Properties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,  # persistent
                    message_id=message.id,
                    headers=dict(message.headers),
                ),
                # Unroutable (no queue bound yet) is not a failure: the exchange fans out to
                # whoever subscribed, like a NATS subject.
                mandatory=False,
                wait=False,
            )
            if not isinstance(result, spec.Basic.Ack):
                raise PublishError(f"RabbitMQ did not confirm {message.id}: {result!r}", 0)

        # Tasks start in creation order and none yields before taking aiormq's FIFO channel
        # lock (wait=False queues the frames without waiting for the socket), so the broker
        # receives the batch (and the batches) in position order; confirms are awaited together.
        futures: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(confirmed(message)) for message in messages
        ]
        return asyncio.ensure_future(_await_all(futures, self.confirm_timeout, "RabbitMQ"))

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


# --- Redis Streams ---------------------------------------------------------------------------


class RedisPublisher(Publisher):
    kind = "redis"

    def __init__(self, url: str, topic: str, **kwargs: Any) -> None:
        super().__init__(url, topic, **kwargs)
        self._client: Any = None

    async def connect(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=DEFAULT_CONNECT_TIMEOUT,
            socket_timeout=self.confirm_timeout,
            retry_on_timeout=False,
        )
        await self._client.ping()

    async def send(self, messages: Sequence[OutgoingMessage]) -> asyncio.Future[None]:
        if self._client is None:
            raise PublishError("not connected to Redis", 0)
        # One pipeline, one round trip: Redis executes the XADDs in order. A reply is the
        # confirmation; without replies we cannot know which ran, so nothing counts as confirmed.
        pipe = self._client.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(self.topic, {"id": message.id, "event": message.body})
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            raise PublishError(f"Redis XADD failed: {exc!r}", 0) from exc
        for index, result in enumerate(results):
            if isinstance(result, Exception):
                raise PublishError(f"Redis XADD failed: {result!r}", index)
        # The replies were the confirmations: nothing left to wait for. (Pipelines are not
        # overlapped: two could run on two pooled connections and interleave.)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


_PUBLISHERS: Final[dict[str, type[Publisher]]] = {
    "nats": NatsPublisher,
    "tls": NatsPublisher,
    "amqp": AmqpPublisher,
    "amqps": AmqpPublisher,
    "redis": RedisPublisher,
    "rediss": RedisPublisher,
}


def publisher_for(url: str, topic: str, **kwargs: Any) -> Publisher:
    """The publisher for ``url``'s scheme."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    cls = _PUBLISHERS.get(scheme)
    if scheme == "kafka":
        from cairn.relay.kafka import KafkaPublisher  # it builds on this module

        cls = KafkaPublisher
    if cls is None:
        raise UnsupportedBrokerURL(
            f"unsupported broker URL {url!r}: use nats://, amqp://, redis:// or kafka://"
        )
    if not topic or any(c.isspace() for c in topic):
        raise UnsupportedBrokerURL(f"broker topic {topic!r} must be non-empty, without spaces")
    return cls(url, topic, **kwargs)
