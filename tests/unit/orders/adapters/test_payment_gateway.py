"""The fake payment gateway's rules (SPEC §10) and its ledger."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from cairn.orders.adapters import (
    FakePaymentGateway,
    Ledger,
    PermanentAdapterError,
    TransientAdapterError,
)


async def _authorize(gw: FakePaymentGateway, token: str, key: str = "k1", amount: str = "10.00"):
    return await gw.authorize(
        idempotency_key=key,
        payment_id="p1",
        amount=Decimal(amount),
        currency="EUR",
        payment_method=token,
    )


async def test_any_tok_token_is_authorised() -> None:
    answer = await _authorize(FakePaymentGateway(), "tok_visa")
    assert answer.approved
    assert answer.authorization_id


async def test_tok_decline_is_declined_with_a_reason() -> None:
    answer = await _authorize(FakePaymentGateway(), "tok_decline")
    assert not answer.approved
    assert answer.reason == "card declined"


async def test_a_token_without_the_tok_prefix_is_declined() -> None:
    assert not (await _authorize(FakePaymentGateway(), "visa")).approved


async def test_amounts_over_the_configured_limit_are_declined() -> None:
    gw = FakePaymentGateway(amount_limit=Decimal("100"))
    assert (await _authorize(gw, "tok_ok", "a", "100.00")).approved
    assert not (await _authorize(gw, "tok_ok", "b", "100.01")).approved


async def test_tok_timeout_never_answers() -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_authorize(FakePaymentGateway(), "tok_timeout"), 0.05)


async def test_tok_flaky_fails_twice_then_succeeds() -> None:
    gw = FakePaymentGateway()
    for _ in range(2):
        with pytest.raises(TransientAdapterError):
            await _authorize(gw, "tok_flaky")
    assert (await _authorize(gw, "tok_flaky")).approved


async def test_a_resent_authorisation_is_recognised_and_not_repeated() -> None:
    gw = FakePaymentGateway()
    first = await _authorize(gw, "tok_ok", "same")
    again = await _authorize(gw, "tok_ok", "same")
    assert again == first
    assert gw.ledger.count("authorize", "p1") == 1


async def test_capture_needs_a_known_authorisation() -> None:
    gw = FakePaymentGateway()
    with pytest.raises(PermanentAdapterError):
        await gw.capture(
            idempotency_key="c",
            payment_id="p1",
            authorization_id="nope",
            amount=Decimal("1"),
            currency="EUR",
        )


async def test_capture_and_void_are_recorded_once_per_key() -> None:
    gw = FakePaymentGateway()
    auth = await _authorize(gw, "tok_ok")
    assert auth.authorization_id is not None
    for _ in range(2):
        await gw.capture(
            idempotency_key="c",
            payment_id="p1",
            authorization_id=auth.authorization_id,
            amount=Decimal("10.00"),
            currency="EUR",
        )
        await gw.void(idempotency_key="v", payment_id="p1", authorization_id=auth.authorization_id)
    assert gw.ledger.count("capture", "p1") == 1
    assert gw.ledger.count("void", "p1") == 1


async def test_a_file_ledger_is_shared_by_gateway_instances(tmp_path: object) -> None:
    path = f"{tmp_path}/ledger.jsonl"
    first = FakePaymentGateway(ledger=Ledger(path))
    await _authorize(first, "tok_ok", "k")
    second = FakePaymentGateway(ledger=Ledger(path))
    await _authorize(second, "tok_ok", "k")
    assert Ledger(path).count("authorize", "p1") == 1


async def test_latency_delays_the_answer() -> None:
    gw = FakePaymentGateway(latency=0.2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_authorize(gw, "tok_ok"), 0.05)
