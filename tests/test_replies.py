"""Replies: every reference fixture parses into the right type; bad shapes are ProtocolErrors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowengine import jsonio
from flowengine.errors import ProtocolError
from flowengine.replies import (
    NO_RATE_LIMIT,
    Association,
    Authenticator,
    Challenge,
    ErrorKind,
    ErrorReply,
    MfaRequired,
    MfaRequirements,
    RateLimit,
    TokenSet,
    classify,
    parse_association,
    parse_authenticators,
    parse_challenge,
    parse_error,
    parse_mfa_required,
    parse_rate_limit,
    parse_token_reply,
    parse_token_set,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "fixtures"

needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "index.json").is_file(),
    reason=f"reference fixtures not found at {FIXTURES} (clone shared/ beside the repo)",
)

#: The ErrorKind each error fixture must get: the classification table, by example.
EXPECTED_KIND: dict[str, ErrorKind] = {
    "auth0-android/mfa-client/error-challenge-invalid-authenticator-404.json": ErrorKind.NOT_FOUND,
    "auth0-android/mfa-client/error-enroll-invalid-phone-400.json": ErrorKind.INVALID_REQUEST,
    "auth0-android/mfa-client/error-list-access-denied-401.json": ErrorKind.UNAUTHORIZED,
    "auth0-android/mfa-client/error-verify-expired-token-401.json": ErrorKind.EXPIRED_TOKEN,
    "auth0-android/mfa-client/error-verify-invalid-grant-403.json": ErrorKind.INVALID_CODE,
    "auth0-auth-js/auth-client/password-grant-wrong-password-403.json": (
        ErrorKind.INVALID_CREDENTIALS
    ),
    "auth0-auth-js/mfa-client/error-challenge-invalid-authenticator-400.json": (
        ErrorKind.INVALID_REQUEST
    ),
    "auth0-auth-js/mfa-client/error-challenge-unsupported-type-400.json": (
        ErrorKind.ENROLLMENT_REQUIRED
    ),
    "auth0-auth-js/mfa-client/error-delete-invalid-authenticator-404.json": ErrorKind.NOT_FOUND,
    "auth0-auth-js/mfa-client/error-enroll-unsupported-type-400.json": ErrorKind.INVALID_REQUEST,
    "auth0-auth-js/mfa-client/error-invalid-token-401.json": ErrorKind.UNAUTHORIZED,
    "auth0-auth-js/mfa-client/verify-invalid-otp-403.json": ErrorKind.INVALID_CODE,
    "auth0-auth-js/mfa-client/verify-malformed-mfa-token-403.json": ErrorKind.MALFORMED_TOKEN,
    "auth0-server-python/error-challenge-expired-token-401.json": ErrorKind.EXPIRED_TOKEN,
    "auth0-server-python/error-challenge-invalid-token-403.json": ErrorKind.EXPIRED_TOKEN,
    "auth0-server-python/error-enroll-invalid-request-400.json": ErrorKind.INVALID_REQUEST,
    "auth0-server-python/error-verify-expired-token-401.json": ErrorKind.EXPIRED_TOKEN,
    "auth0-server-python/error-verify-invalid-grant-403.json": ErrorKind.INVALID_CODE,
    "auth0-server-python/error-verify-invalid-request-400.json": ErrorKind.INVALID_REQUEST,
    "auth0-swift/error-classification/invalid-credentials.json": ErrorKind.INVALID_CREDENTIALS,
    "auth0-swift/error-classification/mfa-enroll-required-legacy.json": (
        ErrorKind.ENROLLMENT_REQUIRED
    ),
    "auth0-swift/error-classification/mfa-enroll-required-oidc.json": (
        ErrorKind.ENROLLMENT_REQUIRED
    ),
    "auth0-swift/error-classification/mfa-invalid-code-legacy.json": ErrorKind.INVALID_CODE,
    "auth0-swift/error-classification/mfa-invalid-otp-oidc.json": ErrorKind.INVALID_CODE,
    "auth0-swift/error-classification/mfa-required-legacy.json": ErrorKind.MFA_REQUIRED,
    "auth0-swift/error-classification/mfa-required-oidc.json": ErrorKind.MFA_REQUIRED,
    "auth0-swift/error-classification/mfa-token-expired.json": ErrorKind.EXPIRED_TOKEN,
    "auth0-swift/error-classification/mfa-token-malformed.json": ErrorKind.MALFORMED_TOKEN,
    "auth0-swift/error-classification/too-many-attempts.json": ErrorKind.TOO_MANY_ATTEMPTS,
    "auth0-swift/mfa-client/error-invalid-authenticator.json": ErrorKind.INVALID_REQUEST,
    "auth0-swift/mfa-client/error-invalid-email.json": ErrorKind.INVALID_REQUEST,
    "auth0-swift/mfa-client/error-invalid-grant-oob.json": ErrorKind.INVALID_CODE,
    "auth0-swift/mfa-client/error-invalid-otp.json": ErrorKind.INVALID_CODE,
    "auth0-swift/mfa-client/error-invalid-recovery-code.json": ErrorKind.INVALID_CODE,
    "auth0-swift/mfa-client/error-invalid-request.json": ErrorKind.INVALID_REQUEST,
    "auth0-swift/mfa-client/error-invalid-token.json": ErrorKind.EXPIRED_TOKEN,
    "auth0-swift/mfa-client/error-server-error.json": ErrorKind.SERVER_ERROR,
    "auth0-swift/mfa-client/error-unauthorized.json": ErrorKind.UNAUTHORIZED,
    "go-auth0/token-mfa-oob-denied-400.json": ErrorKind.ACCESS_DENIED,
    "go-auth0/token-mfa-oob-pending-400.json": ErrorKind.AUTHORIZATION_PENDING,
}

#: Fixtures a client must reject: auth-js rejects a token answer without access_token too.
EXPECTED_PROTOCOL_ERROR = frozenset(
    {"auth0-auth-js/mfa-client/verify-missing-access-token-200.json"}
)

#: Status to serve where the fixture leaves it to the test (``status: null``).
DEFAULT_STATUS = {"auth0-swift/mfa-client/error-server-error.json": 500}


@attrs.frozen
class Fixture:
    """One reference fixture file, with the status to serve it with."""

    name: str
    endpoint: str
    status: int
    content_type: str
    body: Any

    @property
    def path(self) -> str:
        """The request path the fixture answers (the first of several; "any MFA endpoint":
        /mfa/challenge)."""
        method, _, rest = self.endpoint.split("|")[0].partition(" ")
        return rest.split()[0] if method in ("GET", "POST", "DELETE") else "/mfa/challenge"


def load_fixtures() -> list[Fixture]:
    """Every fixture listed in index.json (empty when the directory is absent)."""
    if not (FIXTURES / "index.json").is_file():
        return []
    index = jsonio.loads((FIXTURES / "index.json").read_bytes())
    fixtures = []
    for entry in index["files"]:
        data = jsonio.loads((FIXTURES / entry["file"]).read_bytes())
        response = data["response"]
        body = response["body"]
        status = response["status"]
        if status is None:
            mfa = isinstance(body, dict) and body.get("error") == "mfa_required"
            status = DEFAULT_STATUS.get(entry["file"], 403 if mfa else 400)
        fixtures.append(
            Fixture(entry["file"], data["endpoint"], status, response["content_type"] or "", body)
        )
    return fixtures


ALL_FIXTURES = load_fixtures()
FIXTURE_IDS = [f.name for f in ALL_FIXTURES]


def parse_fixture(fixture: Fixture) -> object:
    """Parse a fixture body as the client parses the answer of its endpoint."""
    endpoint, status, body = fixture.endpoint, fixture.status, fixture.body
    path = fixture.path
    if not 200 <= status < 300:
        if path == "/oauth/token":
            return parse_token_reply(body, endpoint=endpoint, status=status)
        return parse_error(body, endpoint=endpoint, status=status)
    if path == "/oauth/token":
        return parse_token_reply(body, endpoint=endpoint, status=status)
    if path == "/mfa/authenticators":
        return parse_authenticators(body, endpoint=endpoint, status=status)
    if path.startswith("/mfa/authenticators/"):
        return None
    if path == "/mfa/associate":
        return parse_association(body, endpoint=endpoint, status=status)
    if path == "/mfa/challenge":
        return parse_challenge(body, endpoint=endpoint, status=status)
    return body


def check_reply(fixture: Fixture, reply: object) -> None:
    """Assert that ``reply`` is what ``fixture`` must parse into."""
    body, path = fixture.body, fixture.path
    if fixture.name in EXPECTED_KIND:
        assert isinstance(reply, ErrorReply)
        assert reply.kind is EXPECTED_KIND[fixture.name]
        assert reply.status == fixture.status
        assert reply.error == body["error"]
    elif not 200 <= fixture.status < 300:
        assert isinstance(reply, MfaRequired)
        assert reply.mfa_token == body["mfa_token"]
        if "mfa_requirements" in body:
            assert reply.requirements is not None
            assert reply.requirements.challenge == tuple(
                item["type"] for item in body["mfa_requirements"].get("challenge", [])
            )
        else:
            assert reply.requirements is None
    elif path == "/oauth/token":
        assert isinstance(reply, TokenSet)
        assert reply.access_token == body["access_token"]
        assert reply.token_type.lower() == "bearer"
        assert reply.expires_in == int(float(body["expires_in"]))
        assert reply.recovery_code == body.get("recovery_code")
    elif path == "/mfa/authenticators":
        assert isinstance(reply, list)
        assert [a.id for a in reply] == [item["id"] for item in body]
        assert [a.oob_channel for a in reply] == [
            item.get("oob_channel", (item.get("oob_channels") or [None])[0]) for item in body
        ]
    elif path.startswith("/mfa/authenticators/"):
        assert reply is None
    elif path == "/mfa/associate":
        assert isinstance(reply, Association)
        assert reply.authenticator_type == body["authenticator_type"]
        assert reply.recovery_codes == tuple(body.get("recovery_codes", ()))
    elif path == "/mfa/challenge":
        assert isinstance(reply, Challenge)
        assert (reply.challenge_type, reply.oob_code) == (
            body["challenge_type"],
            body.get("oob_code"),
        )
    else:
        assert reply == body


@needs_fixtures
def test_fixture_table_covers_every_error_fixture() -> None:
    """Every error-status fixture without an mfa_token has an expected kind in the table."""
    for fixture in ALL_FIXTURES:
        body = fixture.body
        is_error = not 200 <= fixture.status < 300
        if is_error and not (isinstance(body, dict) and "mfa_token" in body):
            assert fixture.name in EXPECTED_KIND, fixture.name


@needs_fixtures
@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=FIXTURE_IDS)
def test_fixture_parses_into_its_reply_type(fixture: Fixture) -> None:
    """The fixture body parses into the reply type its endpoint and status call for."""
    if fixture.name in EXPECTED_PROTOCOL_ERROR:
        with pytest.raises(ProtocolError):
            parse_fixture(fixture)
        return
    check_reply(fixture, parse_fixture(fixture))


# --- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "description", "kind"),
    [
        (403, "invalid_grant", "Invalid otp_code.", ErrorKind.INVALID_CODE),
        (403, "invalid_grant", "Invalid binding_code.", ErrorKind.INVALID_CODE),
        (403, "invalid_grant", "Invalid recovery_code.", ErrorKind.INVALID_CODE),
        (403, "invalid_grant", "MFA Authorization rejected.", ErrorKind.ACCESS_DENIED),
        (400, "access_denied", "MFA Authorization rejected.", ErrorKind.ACCESS_DENIED),
        (401, "invalid_grant", "Malformed mfa_token", ErrorKind.MALFORMED_TOKEN),
        (
            401,
            "invalid_grant",
            "The mfa_token provided is invalid. Try getting a new token.",
            ErrorKind.MALFORMED_TOKEN,
        ),
        (401, "expired_token", "mfa_token is expired", ErrorKind.EXPIRED_TOKEN),
        (400, "authorization_pending", "Authorization pending", ErrorKind.AUTHORIZATION_PENDING),
        (429, "slow_down", "", ErrorKind.SLOW_DOWN),
        (429, "too_many_requests", "Global limit", ErrorKind.RATE_LIMITED),
        (429, "too_many_attempts", "blocked", ErrorKind.TOO_MANY_ATTEMPTS),
        (403, "invalid_grant", "Wrong email or password.", ErrorKind.INVALID_CREDENTIALS),
        (403, "access_denied", "User is already enrolled.", ErrorKind.ALREADY_ENROLLED),
        (400, "unsupported_challenge_type", "", ErrorKind.ENROLLMENT_REQUIRED),
        (400, "association_required", "", ErrorKind.ENROLLMENT_REQUIRED),
        (403, "mfa_required", "Multifactor authentication required", ErrorKind.MFA_REQUIRED),
        (404, "invalid_authenticator", "Authenticator not found", ErrorKind.NOT_FOUND),
        (401, "", "", ErrorKind.UNAUTHORIZED),
        (503, "invalid_request", "", ErrorKind.SERVER_ERROR),
        (400, "invalid_request", "", ErrorKind.INVALID_REQUEST),
        (403, "unauthorized_client", "Grant type not allowed", ErrorKind.OTHER),
        (403, "invalid_grant", "Unknown or invalid refresh token.", ErrorKind.OTHER),
    ],
)
def test_classify(status: int, error: str, description: str, kind: ErrorKind) -> None:
    """classify() maps the error string and description (then the status) to a kind."""
    assert classify(status, error, description) is kind


def test_error_reply_kind_is_computed() -> None:
    """An ErrorReply built by hand gets its kind from classify()."""
    reply = ErrorReply("POST /oauth/token", 400, "authorization_pending", "")
    assert reply.kind is ErrorKind.AUTHORIZATION_PENDING


def test_error_kind_values_are_snake_case_names() -> None:
    """ErrorKind members are strings usable as stats keys."""
    assert str(ErrorKind.INVALID_CODE) == "invalid_code"


# --- shapes and variants ------------------------------------------------------------------------

EP = "POST /oauth/token"


def test_expires_in_as_numeric_string() -> None:
    """expires_in sent as a string such as "3600.0" becomes an int."""
    reply = parse_token_set(
        {"access_token": "a", "token_type": "bearer", "expires_in": "3600.0"},
        endpoint=EP,
        status=200,
    )
    assert reply.expires_in == 3600


@pytest.mark.parametrize("value", ["soon", True, [], "nan"])
def test_expires_in_not_a_number(value: object) -> None:
    """An expires_in that is not a number of seconds is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_token_set(
            {"access_token": "a", "token_type": "Bearer", "expires_in": value},
            endpoint=EP,
            status=200,
        )


def test_token_set_tolerates_unknown_fields() -> None:
    """Unknown members of a token answer are ignored."""
    body = {"access_token": "a", "token_type": "Bearer", "issued_token_type": "x", "new": {}}
    assert parse_token_set(body, endpoint=EP, status=200).access_token == "a"


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "Bearer"},
        {"access_token": "", "token_type": "Bearer"},
        {"access_token": 5, "token_type": "Bearer"},
        {"access_token": "a"},
        {"access_token": "a", "token_type": "Bearer", "id_token": 1},
        ["access_token"],
        None,
    ],
)
def test_token_set_wrong_shape(body: object) -> None:
    """A token answer with a missing or mistyped member is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_token_set(body, endpoint=EP, status=200)


def test_protocol_error_names_endpoint_and_status() -> None:
    """The ProtocolError carries the endpoint and the status, in attributes and message."""
    with pytest.raises(ProtocolError) as info:
        parse_challenge({"challenge_type": 3}, endpoint="POST /mfa/challenge", status=200)
    assert (info.value.endpoint, info.value.status) == ("POST /mfa/challenge", 200)
    assert "POST /mfa/challenge answered 200" in str(info.value)


def test_protocol_error_message_shows_no_value() -> None:
    """A mistyped secret is named, never shown."""
    with pytest.raises(ProtocolError) as info:
        parse_mfa_required({"mfa_token": ["Fe26.2*secret"]}, endpoint=EP, status=403)
    assert "Fe26" not in str(info.value)


def test_mfa_required_with_requirements() -> None:
    """mfa_requirements lists become tuples of factor types."""
    body = {
        "error": "mfa_required",
        "mfa_token": "t",
        "mfa_requirements": {"challenge": [{"type": "otp"}], "enroll": [{"type": "push"}, "sms"]},
    }
    reply = parse_token_reply(body, endpoint=EP, status=403)
    assert reply == MfaRequired("t", MfaRequirements(("otp",), ("push", "sms")))


def test_legacy_mfa_required_with_token() -> None:
    """a0.mfa_required with an mfa_token is an MfaRequired too."""
    reply = parse_token_reply(
        {"error": "a0.mfa_required", "mfa_token": "t"}, endpoint=EP, status=401
    )
    assert isinstance(reply, MfaRequired)


@pytest.mark.parametrize(
    "requirements", [[], {"challenge": "otp"}, {"challenge": [{"kind": "otp"}]}, {"enroll": [1]}]
)
def test_mfa_requirements_wrong_shape(requirements: object) -> None:
    """Unreadable mfa_requirements are a ProtocolError."""
    body = {"error": "mfa_required", "mfa_token": "t", "mfa_requirements": requirements}
    with pytest.raises(ProtocolError):
        parse_token_reply(body, endpoint=EP, status=403)


def test_legacy_code_description_error() -> None:
    """A legacy {"code", "description"} error body is read like error/error_description."""
    reply = parse_error(
        {"code": "too_many_attempts", "description": "Blocked"}, endpoint=EP, status=429
    )
    assert (reply.error, reply.error_description, reply.kind) == (
        "too_many_attempts",
        "Blocked",
        ErrorKind.TOO_MANY_ATTEMPTS,
    )


def test_error_without_description() -> None:
    """A missing error_description becomes an empty string."""
    assert parse_error({"error": "slow_down"}, endpoint=EP, status=429).error_description == ""


@pytest.mark.parametrize("body", [{"error": 3}, {"message": "x"}, [], "text", None])
def test_unreadable_error_body_on_400(body: object) -> None:
    """A 400 whose body has no error string is a ProtocolError: the status says too little."""
    with pytest.raises(ProtocolError):
        parse_error(body, endpoint=EP, status=400)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.UNAUTHORIZED),
        (404, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RATE_LIMITED),
        (502, ErrorKind.SERVER_ERROR),
    ],
)
def test_unreadable_error_body_when_status_explains(status: int, kind: ErrorKind) -> None:
    """A 401/404/429/5xx without a readable body is an ErrorReply classified by its status."""
    reply = parse_error(None, endpoint=EP, status=status)
    assert (reply.error, reply.kind) == ("", kind)


def test_authenticator_oob_channels_list() -> None:
    """auth-js's plural oob_channels list gives the first channel."""
    body = [
        {"id": "sms|dev_1", "authenticator_type": "oob", "active": True, "oob_channels": ["sms"]}
    ]
    assert parse_authenticators(body, endpoint="GET /mfa/authenticators", status=200) == [
        Authenticator("sms|dev_1", "oob", True, "sms")
    ]


def test_authenticator_type_field_kept() -> None:
    """The optional 'type' field of flexible-factor tenants is kept."""
    body = [{"id": "sms|d", "authenticator_type": "oob", "active": True, "type": "phone"}]
    [authenticator] = parse_authenticators(body, endpoint="GET /mfa/authenticators", status=200)
    assert authenticator.type == "phone"


@pytest.mark.parametrize(
    "item",
    [
        {"authenticator_type": "otp", "active": True},
        {"id": "totp|d", "active": True},
        {"id": "totp|d", "authenticator_type": "otp", "active": "true"},
        {"id": "totp|d", "authenticator_type": "otp"},
        {"id": "sms|d", "authenticator_type": "oob", "active": True, "oob_channels": "sms"},
        "totp|d",
    ],
)
def test_authenticator_wrong_shape(item: object) -> None:
    """An authenticator entry with a missing or mistyped member is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_authenticators([item], endpoint="GET /mfa/authenticators", status=200)


def test_authenticators_not_a_list() -> None:
    """An authenticator answer that is not a list is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_authenticators({"authenticators": []}, endpoint="GET /mfa/authenticators", status=200)


@pytest.mark.parametrize(
    "body",
    [
        {"authenticator_type": "otp", "barcode_uri": "otpauth://x"},
        {"authenticator_type": "oob", "oob_channel": "sms"},
        {"authenticator_type": "otp", "secret": "S", "recovery_codes": "ABC"},
        {"secret": "S"},
    ],
)
def test_association_wrong_shape(body: object) -> None:
    """An otp association without secret, an oob one without oob_code, etc. are rejected."""
    with pytest.raises(ProtocolError):
        parse_association(body, endpoint="POST /mfa/associate", status=200)


def test_oob_challenge_needs_oob_code() -> None:
    """An oob challenge without an oob_code is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_challenge({"challenge_type": "oob"}, endpoint="POST /mfa/challenge", status=200)


# --- secrets never in a repr -----------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        TokenSet("SECRET1", "Bearer", 60, "openid", "SECRET2", "SECRET3", "SECRET4"),
        MfaRequired("SECRET1", MfaRequirements(("otp",), ())),
        Association("otp", "SECRET1", "otpauth://SECRET2", "SECRET3", None, None, ("SECRET4",)),
        Challenge("oob", "SECRET1", "prompt"),
    ],
    ids=lambda reply: type(reply).__name__,
)
def test_repr_masks_secrets(reply: object) -> None:
    """No secret appears in the repr (nor str) of a reply."""
    assert "SECRET" not in repr(reply)
    assert "SECRET" not in str(reply)


def test_repr_shows_absent_secret_as_none() -> None:
    """A masked field that is absent shows as None, so presence stays visible."""
    assert "refresh_token=None" in repr(TokenSet("a"))
    assert "access_token='***'" in repr(TokenSet("a"))


# --- rate-limit headers -------------------------------------------------------------------------


def test_rate_limit_headers() -> None:
    """X-RateLimit-* and Retry-After become a RateLimit."""
    headers = {
        "X-RateLimit-Limit": "30",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1767225660",
        "Retry-After": "12",
    }
    assert parse_rate_limit(headers) == RateLimit(30, 0, 1767225660.0, 12.0)


def test_rate_limit_absent() -> None:
    """Without any rate-limit header the shared empty RateLimit is returned."""
    assert parse_rate_limit({}) is NO_RATE_LIMIT


def test_rate_limit_unreadable_values() -> None:
    """Unreadable header values become None instead of failing the reply."""
    assert parse_rate_limit({"X-RateLimit-Limit": "many", "Retry-After": "later"}) == RateLimit()


def test_retry_after_http_date_in_the_past() -> None:
    """A Retry-After HTTP date in the past means retry now (0 seconds)."""
    limit = parse_rate_limit({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert limit.retry_after == 0.0


# --- hypothesis: any JSON in, a reply or a ProtocolError out ---------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "access_token",
                    "token_type",
                    "expires_in",
                    "error",
                    "error_description",
                    "code",
                    "description",
                    "mfa_token",
                    "mfa_requirements",
                    "challenge",
                    "enroll",
                    "type",
                    "id",
                    "authenticator_type",
                    "active",
                    "oob_channel",
                    "oob_channels",
                    "secret",
                    "oob_code",
                    "recovery_codes",
                    "challenge_type",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=12,
)

PARSERS = [
    parse_token_set,
    parse_mfa_required,
    parse_authenticators,
    parse_association,
    parse_challenge,
]


@given(body=json_values, status=st.integers(100, 599))
def test_parsers_raise_only_protocol_errors(body: object, status: int) -> None:
    """Whatever JSON comes in, a parser returns its reply or raises ProtocolError."""
    for parser in PARSERS:
        error: ProtocolError | None = None
        try:
            parser(body, endpoint=EP, status=status)
        except ProtocolError as exc:
            error = exc
        assert error is None or (error.endpoint, error.status) == (EP, status)


@given(body=json_values, status=st.integers(400, 599))
def test_token_reply_parser_raises_only_protocol_errors(body: object, status: int) -> None:
    """An error answer of the token endpoint is MfaRequired, ErrorReply or ProtocolError."""
    try:
        reply = parse_token_reply(body, endpoint=EP, status=status)
    except ProtocolError:
        return
    assert isinstance(reply, MfaRequired | ErrorReply)
