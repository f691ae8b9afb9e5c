"""Token buckets, global and per-endpoint rate limits (429 + X-RateLimit-*), sweeping."""

from __future__ import annotations

from flowengine.clock import ManualClock
from flowengine.emulator.config import BucketLimit, Lifetimes, Limits
from flowengine.emulator.limits import BucketMap, TokenBucket, rate_limit_headers
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import challenge, json_of, mfa_token, password, state_of


def test_bucket_burst_then_refill() -> None:
    """A bucket gives its burst, then one token per refill period."""
    bucket = TokenBucket(BucketLimit(burst=2, refill_every=10), 0.0)
    assert bucket.take(0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert not bucket.take(9.9)
    assert bucket.take(10.0)


def test_bucket_never_exceeds_burst() -> None:
    """Refill stops at the burst size."""
    bucket = TokenBucket(BucketLimit(burst=3, refill_every=1), 0.0)
    assert bucket.remaining(1000.0) == 3


def test_bucket_map_sweeps_full_buckets() -> None:
    """sweep() forgets buckets that have refilled."""
    buckets = BucketMap(BucketLimit(burst=1, refill_every=5))
    buckets.take("a", 0.0)
    buckets.take("b", 4.0)
    assert buckets.sweep(5.0) == 1
    assert len(buckets) == 1


def test_headers() -> None:
    """Headers give the limit, what remains, the reset epoch and Retry-After when limited."""
    bucket = TokenBucket(BucketLimit(burst=2, refill_every=10), 1000.0)
    bucket.take(1000.0)
    bucket.take(1000.0)
    assert rate_limit_headers(bucket, 1000.0, limited=True) == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1020",
        "Retry-After": "10",
    }


async def test_endpoint_rate_limit(make_client: MakeClient, clock: ManualClock) -> None:
    """A per-endpoint limit answers 429 too_many_requests with the X-RateLimit headers."""
    client = await make_client(
        limits=Limits(endpoints={"/oauth/token": BucketLimit(burst=2, refill_every=1)})
    )
    first = await password(client, "frank", "frank-pw")
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    await password(client, "frank", "frank-pw")
    response = await password(client, "frank", "frank-pw")
    assert response.status == 429
    assert (await json_of(response))["error"] == "too_many_requests"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) == int(clock.time()) + 2
    clock.advance(1)
    assert (await password(client, "frank", "frank-pw")).status == 200


async def test_endpoint_limit_leaves_other_paths(make_client: MakeClient) -> None:
    """A per-endpoint limit does not touch other paths."""
    client = await make_client(
        limits=Limits(endpoints={"/oauth/token": BucketLimit(burst=1, refill_every=60)})
    )
    for _ in range(3):
        assert (await client.get("/.well-known/jwks.json")).status == 200


async def test_global_rate_limit(make_client: MakeClient) -> None:
    """The global limit counts every endpoint."""
    client = await make_client(limits=Limits(global_rate=BucketLimit(burst=2, refill_every=60)))
    await client.get("/.well-known/jwks.json")
    await password(client, "frank", "frank-pw")
    assert (await client.get("/.well-known/openid-configuration")).status == 429


async def test_control_api_is_not_rate_limited(make_client: MakeClient) -> None:
    """Control API calls do not spend the global limit."""
    client = await make_client(limits=Limits(global_rate=BucketLimit(burst=1, refill_every=60)))
    for _ in range(3):
        assert (await client.get("/_emulator/users/frank")).status == 200


async def test_no_rate_limit_headers_by_default(client: Client) -> None:
    """Without global or endpoint limits, no X-RateLimit headers are added."""
    response = await password(client, "frank", "frank-pw")
    assert "X-RateLimit-Limit" not in response.headers


async def test_sweep_forgets_expired_challenges(client: Client, clock: ManualClock) -> None:
    """Expired challenges, full buckets and stale messages are swept."""
    state = state_of(client)
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    await challenge(client, token, challenge_type="oob")
    assert len(state.challenges) == 1
    assert state.sweep()["challenges"] == 0
    clock.advance(3601)
    swept = state.sweep()
    assert swept["challenges"] == 1
    assert swept["messages"] == 1
    assert swept["buckets"] >= 1
    assert state.challenges == {}
    assert state.inbox("carol@example.com") == []


async def test_sweep_forgets_expired_refresh_tokens(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """Expired refresh tokens are swept."""
    client = await make_client(lifetimes=Lifetimes(refresh_token=60))
    await password(
        client, "frank", "frank-pw", audience="https://api.test/", scope="offline_access"
    )
    clock.advance(60)
    assert state_of(client).sweep()["refresh_tokens"] == 1


async def test_sweep_forgets_lifted_blocks(client: Client, clock: ManualClock) -> None:
    """Brute-force entries go once the block and the failure memory have passed."""
    await password(client, "alice@example.com", "bad")
    clock.advance(30 * 86400)
    assert state_of(client).sweep()["login_failures"] == 1


async def test_inbox_is_bounded(make_client: MakeClient) -> None:
    """A user's inbox keeps the last inbox_size messages."""
    client = await make_client(inbox_size=2)
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    codes = []
    for _ in range(3):
        await challenge(client, token, challenge_type="oob")
        codes.append(state_of(client).inbox("carol@example.com")[-1].code)
    assert [m.code for m in state_of(client).inbox("carol@example.com")] == codes[1:]


async def test_sweeper_task_runs_with_app(make_client: MakeClient, clock: ManualClock) -> None:
    """The app's sweeper task sweeps on its interval (0 here: every loop turn)."""
    import asyncio

    client = await make_client(sweep_interval=0)
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    await challenge(client, token, challenge_type="oob")
    clock.advance(3601)
    for _ in range(3):
        await asyncio.sleep(0)
    assert state_of(client).challenges == {}


async def test_refresh_tokens_are_capped(make_client: MakeClient) -> None:
    """Beyond max_refresh_tokens the oldest refresh token is forgotten."""
    client = await make_client(max_refresh_tokens=2)
    for _ in range(3):
        await password(
            client, "frank", "frank-pw", audience="https://api.test/", scope="offline_access"
        )
    assert len(state_of(client).refresh_tokens) == 2
