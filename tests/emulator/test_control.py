"""The test-only control API under /_emulator/."""

from __future__ import annotations

from flowengine.clock import ManualClock
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import OOB, challenge, grant, json_of, mfa_token


async def test_disabled_by_default(make_client: MakeClient) -> None:
    """Without control_api every control path is 404."""
    client = await make_client(control_api=False)
    assert (await client.get("/_emulator/inbox/alice%40example.com")).status == 404
    assert (await client.post("/_emulator/push/erin%40example.com/approve")).status == 404
    assert (await client.put("/_emulator/push-policy", json={"mode": "approve"})).status == 404
    assert (await client.get("/_emulator/users/frank")).status == 404


async def test_inbox(client: Client, clock: ManualClock) -> None:
    """The inbox lists sent codes oldest first with channel, to, code and sent_at."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    await challenge(client, token, challenge_type="oob")
    response = await client.get("/_emulator/inbox/carol%40example.com")
    body = await json_of(response)
    assert response.status == 200
    (message,) = body["messages"]
    assert set(message) == {"channel", "to", "code", "sent_at"}
    assert message["channel"] == "sms"
    assert message["to"] == "+15550000003"
    assert message["sent_at"] == clock.time()


async def test_inbox_channel_filter(client: Client) -> None:
    """?channel= keeps one channel."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    await challenge(client, token, challenge_type="oob")
    body = await json_of(await client.get("/_emulator/inbox/carol%40example.com?channel=voice"))
    assert body == {"messages": []}


async def test_inbox_bad_channel(client: Client) -> None:
    """An unknown channel is 400."""
    assert (await client.get("/_emulator/inbox/frank?channel=fax")).status == 400


async def test_inbox_unknown_user(client: Client) -> None:
    """An unknown user is 404."""
    assert (await client.get("/_emulator/inbox/ghost")).status == 404


async def test_code_from_inbox_completes_login(client: Client) -> None:
    """A code read through the control API completes the mfa-oob grant."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    oob_code = (await json_of(await challenge(client, token, challenge_type="oob")))["oob_code"]
    inbox = await json_of(await client.get("/_emulator/inbox/carol%40example.com"))
    response = await grant(
        client, OOB, token, oob_code=oob_code, binding_code=inbox["messages"][-1]["code"]
    )
    assert response.status == 200


async def test_approve(client: Client) -> None:
    """approve answers the pending pushes and reports how many."""
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    oob_code = (await json_of(await challenge(client, token, challenge_type="oob")))["oob_code"]
    response = await client.post("/_emulator/push/erin%40example.com/approve")
    assert await json_of(response) == {"answered": 1}
    assert (await grant(client, OOB, token, oob_code=oob_code)).status == 200


async def test_reject(client: Client) -> None:
    """reject makes the poll answer access_denied."""
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    oob_code = (await json_of(await challenge(client, token, challenge_type="oob")))["oob_code"]
    assert (await client.post("/_emulator/push/erin%40example.com/reject")).status == 200
    assert (await json_of(await grant(client, OOB, token, oob_code=oob_code)))[
        "error"
    ] == "access_denied"


async def test_approve_without_pending_push(client: Client) -> None:
    """approve with nothing pending is 404."""
    assert (await client.post("/_emulator/push/erin%40example.com/approve")).status == 404


async def test_push_policy(client: Client, clock: ManualClock) -> None:
    """PUT push-policy approve after_ms answers future pushes automatically."""
    response = await client.put(
        "/_emulator/push-policy", json={"mode": "approve", "after_ms": 1500}
    )
    assert response.status == 200
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    oob_code = (await json_of(await challenge(client, token, challenge_type="oob")))["oob_code"]
    assert (await grant(client, OOB, token, oob_code=oob_code)).status == 400
    clock.advance(1.5)
    assert (await grant(client, OOB, token, oob_code=oob_code)).status == 200


async def test_push_policy_for_one_user(client: Client) -> None:
    """A policy naming a username applies to that user only."""
    await client.put(
        "/_emulator/push-policy", json={"mode": "reject", "username": "someone@example.com"}
    )
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    oob_code = (await json_of(await challenge(client, token, challenge_type="oob")))["oob_code"]
    assert (await json_of(await grant(client, OOB, token, oob_code=oob_code)))[
        "error"
    ] == "authorization_pending"


async def test_push_policy_validation(client: Client) -> None:
    """A bad mode or after_ms is 400."""
    assert (await client.put("/_emulator/push-policy", json={"mode": "maybe"})).status == 400
    assert (
        await client.put("/_emulator/push-policy", json={"mode": "approve", "after_ms": -1})
    ).status == 400


async def test_user_view(client: Client) -> None:
    """users/{username} shows authenticators with their OTP secret and the recovery code."""
    body = await json_of(await client.get("/_emulator/users/bob%40example.com"))
    assert body["username"] == "bob@example.com"
    assert body["recovery_code"] == "ABCDEFGHIJKLMNOPQRSTUVWX"
    otp = body["authenticators"][0]
    assert otp["factor"] == "otp"
    assert otp["secret"] == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def test_user_view_unknown(client: Client) -> None:
    """An unknown user is 404."""
    assert (await client.get("/_emulator/users/ghost")).status == 404
