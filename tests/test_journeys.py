"""Journeys against the embedded emulator, in-process: shipped files, step kinds, failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from flowengine.credstore import open_store
from flowengine.exitcodes import ExitCode
from flowengine.journeys import JourneysResult, StepResult, UserResult, seeded_users
from flowengine.runner import Runner, RunResult
from flowengine.spec import Scenario, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "flows" / "journeys").glob("*.yaml"))
GROUP = {"count": 1, "pattern": "kit{n}@example.test", "password": "Kit-{n}-pw"}
PHONE_GROUP = {**GROUP, "phone": "+1444{n:07d}"}


def scenario(tmp_path: Path, *journeys: dict[str, Any], **data: Any) -> Scenario:
    """A journeys-only scenario (memory credentials unless ``data`` says otherwise)."""
    document = {"credentials": "memory", "journeys": list(journeys), **data}
    return parse_scenario(document, source="journeys.yaml", base_dir=tmp_path, env={})


def journey(*steps: Any, users: Any = None, name: str = "j") -> dict[str, Any]:
    """A journey; a step may be written as in YAML (``"enroll: email"``)."""
    items = [yaml.safe_load(s) if isinstance(s, str) else s for s in steps]
    return {"name": name, "users": users or PHONE_GROUP, "steps": items}


async def run(scenario: Scenario, **options: Any) -> RunResult:
    return await Runner(scenario, **options).run()


def journeys_of(result: RunResult) -> JourneysResult:
    assert result.journeys is not None
    return result.journeys


def only_user(result: RunResult) -> UserResult:
    (journey,) = journeys_of(result).journeys
    (user,) = journey.users
    return user


def step(result: RunResult, label: str) -> StepResult:
    return next(s for s in only_user(result).steps if s.label == label)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
async def test_shipped_journey_passes(path: Path) -> None:
    """Every journey in flows/journeys passes against the embedded emulator."""
    result = await run(load_scenario(path))
    failures = [s.message for _, s in journeys_of(result).failures()]
    assert failures == [] and result.exit_code is ExitCode.OK
    assert all(u.status == "pass" for j in journeys_of(result).journeys for u in j.users)


async def test_wrong_expectation_names_user_step_expected_and_actual(tmp_path: Path) -> None:
    """A deliberately wrong expectation fails with a message naming all four, and exit 98."""
    wrong = journey(
        "enroll: email",
        {"name": "should fail", "login": "email", "expect": {"outcome": "locked"}},
        "userinfo",
    )
    result = await run(scenario(tmp_path, wrong))
    assert result.exit_code is ExitCode.EXPECTATIONS_FAILED
    failed = step(result, "should fail")
    assert failed.status == "fail" and failed.message is not None
    for part in (
        "kit1@example.test",
        "journeys[0].steps[1]",
        "should fail",
        "expected outcome locked",
        "got outcome success",
    ):
        assert part in failed.message
    assert step(result, "userinfo").status == "skipped"


async def test_failed_step_keeps_the_reply_masked(tmp_path: Path) -> None:
    """The reply that broke an expectation is kept, with no secret in it."""
    wrong = journey("enroll: email", {"login": "email", "expect": {"error": "invalid_grant"}})
    result = await run(scenario(tmp_path, wrong))
    reply = step(result, "login email").reply
    assert reply["outcome"] == "success" and reply["path"]
    assert "eyJ" not in str(reply) and "Fe26" not in str(reply)


async def test_seed_repeats_order_and_choices(tmp_path: Path) -> None:
    """The same seed starts users in the same order and draws the same wrong codes."""
    group = {"count": 8, "pattern": "s{n}@example.test", "password": "S-{n}"}
    parsed = scenario(tmp_path, journey("enroll: email", users=group), seed=7)

    def draws(seed: int) -> tuple[list[str], list[float]]:
        users = seeded_users(parsed.journeys[0], seed)
        return [u.spec.username for u in users], [u.rng.random() for u in users]

    assert draws(7) == draws(7)
    assert draws(7)[0] != draws(8)[0]
    first, second = await run(parsed), await run(parsed)
    orders = [journeys_of(r).journeys[0].order for r in (first, second)]
    assert orders[0] == orders[1] == tuple(draws(7)[0])
    assert first.meta["seed"] == journeys_of(first).seed == 7


async def test_second_factor_enrolls_with_an_mfa_api_token(tmp_path: Path) -> None:
    """With a factor active, enroll uses an MFA-API access token, and no new recovery code."""
    steps = journey(
        "enroll: sms",
        {"enroll": "otp", "expect": {"recovery_code": "unchanged"}},
        {"list_authenticators": {}, "expect": {"authenticators": 2}},
    )
    result = await run(scenario(tmp_path, steps))
    assert only_user(result).status == "pass"


async def test_expire_mfa_token_moves_the_emulator_clock(tmp_path: Path) -> None:
    """expire_mfa_token answers expired_token at once, and OTP still works after the jump."""
    steps = journey(
        "enroll: otp",
        {"expire_mfa_token": {"factor": "otp"}, "expect": {"error": "expired_token"}},
        {"expire_mfa_token": {}, "expect": {"error": "expired_token", "latency": "< 5s"}},
        "login: otp",
    )
    result = await run(scenario(tmp_path, steps))
    assert only_user(result).status == "pass", only_user(result).failure


@pytest.mark.parametrize("factor", ["otp", "recovery-code"])
async def test_wrong_code_is_refused(tmp_path: Path, factor: str) -> None:
    """Wrong OTP and recovery codes are refused with invalid_grant."""
    steps = journey(
        "enroll: otp",
        {"wrong_code": {"factor": factor, "times": 2}, "expect": {"error": "invalid_grant"}},
    )
    assert only_user(await run(scenario(tmp_path, steps))).status == "pass"


async def test_delete_all_leaves_nothing(tmp_path: Path) -> None:
    """delete: all removes every authenticator (twins and recovery code included)."""
    steps = journey(
        "enroll: sms",
        "enroll: email",
        "delete: all",
        {"list_authenticators": {}, "expect": {"authenticators": 0}},
        {"recovery_code": {}, "expect": {"outcome": "failed"}},
    )
    assert only_user(await run(scenario(tmp_path, steps))).status == "pass"


async def test_delete_by_authenticator_id_not_found(tmp_path: Path) -> None:
    """Deleting an id the user does not have fails as authenticator_not_found."""
    steps = journey(
        "enroll: email",
        {"delete": "sms|dev_nothing", "expect": {"error": "authenticator_not_found"}},
    )
    assert only_user(await run(scenario(tmp_path, steps))).status == "pass"


async def test_refresh_and_userinfo_need_a_login(tmp_path: Path) -> None:
    """refresh and userinfo before any login fail, naming what is missing."""
    steps = journey(
        {"refresh": {}, "expect": {"error": "no_refresh_token"}},
        {"userinfo": {}, "expect": {"error": "no_access_token"}},
    )
    assert only_user(await run(scenario(tmp_path, steps))).status == "pass"


async def test_repeat_counts_runs(tmp_path: Path) -> None:
    """A repeat block runs its steps times times and passes when all did."""
    block = {"repeat": {"times": 3, "steps": ["refresh", {"wait": "1ms"}]}}
    steps = journey("enroll: email", block)
    result = await run(scenario(tmp_path, steps))
    assert step(result, "repeat x3").runs == 3 and step(result, "refresh").runs == 3


async def test_failure_inside_repeat_names_the_iteration(tmp_path: Path) -> None:
    """A failing step inside repeat says which iteration failed (the third: locked out)."""
    wrong = {"wrong_code": {"factor": "email", "times": 5}, "expect": {"error": "invalid_grant"}}
    steps = journey("enroll: email", {"repeat": {"times": 3, "steps": [wrong]}})
    failed = step(await run(scenario(tmp_path, steps)), "wrong_code email x5")
    assert failed.iteration == "3/3" and "(iteration 3/3)" in (failed.message or "")
    assert "got outcome locked, error too_many_attempts" in (failed.message or "")


async def test_ignored_push_times_out(tmp_path: Path) -> None:
    """push: ignore leaves the next push unanswered: the login times out."""
    steps = journey(
        "enroll: push",
        "push: ignore",
        {"login": "push", "expect": {"outcome": "timeout"}},
        "push: manual",
    )
    result = await run(scenario(tmp_path, steps, timeouts={"request": "1s", "flow": "1s"}))
    assert only_user(result).status == "pass"


async def test_manual_push_asks_a_person(tmp_path: Path) -> None:
    """push: manual leaves the push to a person, whom the run tells what to answer."""
    steps = journey(
        "enroll: push", "push: manual", {"login": "push", "expect": {"outcome": "timeout"}}
    )
    told: list[str] = []
    parsed = scenario(tmp_path, steps, timeouts={"request": "1s", "flow": "1s"})
    result = await run(parsed, notify=told.append)
    assert only_user(result).status == "pass"
    assert told == ["kit1@example.test: answer the push on the user's phone"]


async def test_journeys_run_next_to_a_load_on_other_users(tmp_path: Path) -> None:
    """A load and a journey run together; the load never logs in a journey's user."""
    store = f"sqlite:///{tmp_path / 'creds.db'}"
    population = {
        "pattern": "mix{n}@example.test",
        "password": "Mix-{n}",
        "count": 4,
        "phone": "+1333{n:07d}",
    }
    mixed = scenario(
        tmp_path,
        journey(
            {"enroll": "email", "expect": {"recovery_code": "issued"}},
            users={"from": "population", "count": 2},
        ),
        users=population,
        factors="sms",
        load={"model": "closed", "users": 2, "iterations": 10},
        credentials=store,
    )
    result = await run(mixed)
    assert result.exit_code is ExitCode.OK and result.snapshot.succeeded == 10
    records = {r.username: r for r in open_store(store).all()}
    assert "sms" not in {a.factor for a in records["mix1@example.test"].authenticators}
    assert "sms" in {a.factor for a in records["mix3@example.test"].authenticators}


async def test_stop_skips_the_rest(tmp_path: Path) -> None:
    """Stopping the run ends a wait at once; the remaining steps are skipped."""
    runner = Runner(scenario(tmp_path, journey("wait: 30s", "userinfo")))
    task = asyncio.create_task(runner.run())
    for _ in range(200):
        if runner.journeys is not None and runner.journeys.result().journeys[0].users:
            break
        await asyncio.sleep(0.01)
    runner.stop()
    result = await asyncio.wait_for(task, timeout=10)
    assert result.exit_code is ExitCode.INTERRUPTED
    assert [s.status for s in only_user(result).steps] == ["skipped", "skipped"]


def test_a_scenario_needs_load_or_journeys(tmp_path: Path) -> None:
    """A Runner refuses a scenario with neither a load nor journeys."""
    empty = attrs.evolve(scenario(tmp_path, journey("userinfo")), journeys=())
    with pytest.raises(ValueError, match="neither a load nor journeys"):
        Runner(empty)


async def test_moved_clock_leaves_no_future_otp_step_in_the_store(tmp_path: Path) -> None:
    """After expire_mfa_token moved the clock, stored TOTP steps are back at real time."""
    store = f"sqlite:///{tmp_path / 'creds.db'}"
    steps = journey("enroll: sms", {"expire_mfa_token": {}, "expect": {"outcome": "failed"}})
    steps["steps"].append({"enroll": "otp"})
    result = await run(scenario(tmp_path, steps, credentials=store))
    assert only_user(result).status == "pass"
    (record,) = open_store(store).all()
    assert record.last_otp_step is not None
    assert record.last_otp_step <= int(time.time() // 30)
