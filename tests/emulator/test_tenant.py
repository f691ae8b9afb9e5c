"""The tenant file: loading, defaults, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.emulator import EmulatorConfig, load_tenant
from flowengine.emulator.config import ALL_GRANTS, GRANT_MFA_OTP, GRANT_PASSWORD
from flowengine.emulator.tenant import parse_tenant
from flowengine.errors import TenantFileError

SAMPLE = Path(__file__).resolve().parents[2] / "flows" / "tenants" / "sample-tenant.yaml"


def _error(document: object) -> TenantFileError:
    with pytest.raises(TenantFileError) as info:
        parse_tenant(document, "t.yaml")
    return info.value


def test_sample_tenant_loads() -> None:
    """The shipped sample tenant is valid."""
    config = load_tenant(SAMPLE)
    assert config.source == str(SAMPLE)
    assert config.settings.friendly_name == "Sample Tenant"
    assert len(config.populations) == 2
    assert config.populations[1].number("otp00042@example.test") == 42


def test_empty_file_is_default_clients_and_no_users(tmp_path: Path) -> None:
    """An empty tenant keeps the default clients and APIs, and has no users."""
    path = tmp_path / "t.yaml"
    path.write_text("")
    config = load_tenant(path)
    assert config.clients == EmulatorConfig.default().clients
    assert config.users == ()
    assert config.populations == ()


def test_default_tenant() -> None:
    """The default tenant: two clients, one API, 10,000 users, MFA required, all factors."""
    config = EmulatorConfig.default()
    assert [c.client_id for c in config.clients] == ["flowengine", "flowengine-public"]
    assert config.clients[0].client_secret == "flowengine-secret"
    assert config.clients[1].auth_method == "none"
    assert config.apis[0].audience == "https://api.example.test/"
    assert config.populations[0].count == 10000
    assert config.populations[0].user(7).password == "Passw0rd!7"
    assert config.settings.mfa_required
    assert config.settings.factors == {"otp", "sms", "voice", "email", "push"}


def test_grant_aliases() -> None:
    """Short grant names map to Auth0's full names; all means every grant."""
    config = parse_tenant({"clients": [{"client_id": "a", "grant_types": ["password", "mfa-otp"]}]})
    assert config.clients[0].grant_types == {GRANT_PASSWORD, GRANT_MFA_OTP}
    config = parse_tenant({"clients": [{"client_id": "a", "grant_types": "all"}]})
    assert config.clients[0].grant_types == ALL_GRANTS


def test_client_without_secret_is_public() -> None:
    """A client without a secret defaults to auth_method none."""
    config = parse_tenant({"clients": [{"client_id": "a"}]})
    assert config.clients[0].auth_method == "none"


def test_user_email_defaults_to_username() -> None:
    """A username with @ is the user's email."""
    config = parse_tenant({"users": [{"username": "a@b.test", "password": "p"}]})
    assert config.users[0].email == "a@b.test"


def test_settings_override_one_by_one() -> None:
    """A settings key overrides only itself."""
    config = parse_tenant({"settings": {"lifetimes": {"mfa_token": 300}}})
    assert config.settings.lifetimes.mfa_token == 300
    assert config.settings.lifetimes.code == 300
    assert config.settings.mfa_required


def test_missing_file(tmp_path: Path) -> None:
    """A missing file names the file."""
    with pytest.raises(TenantFileError, match="cannot read"):
        load_tenant(tmp_path / "nope.yaml")


def test_bad_yaml(tmp_path: Path) -> None:
    """Broken YAML names the file and the line."""
    path = tmp_path / "t.yaml"
    path.write_text("clients: [\n")
    with pytest.raises(TenantFileError) as info:
        load_tenant(path)
    assert info.value.source == str(path)
    assert info.value.path is not None
    assert info.value.path.startswith("line ")


def test_unknown_top_level_key() -> None:
    """An unknown key is named with the keys expected."""
    error = _error({"clients": [], "userz": []})
    assert error.path == "userz"
    assert "one of the keys" in str(error)
    assert str(error).startswith("t.yaml: userz: ")


def test_top_level_not_mapping() -> None:
    """A list at the top is refused."""
    assert "a mapping" in str(_error([1, 2]))


def test_bad_auth_method() -> None:
    """An unknown auth_method names the key path."""
    error = _error({"clients": [{"client_id": "a", "client_secret": "s", "auth_method": "jwt"}]})
    assert error.path == "clients[0].auth_method"


def test_confidential_client_needs_secret() -> None:
    """client_secret_post without a secret is refused."""
    error = _error({"clients": [{"client_id": "a", "auth_method": "client_secret_post"}]})
    assert error.path == "clients[0].client_secret"


def test_unknown_grant() -> None:
    """An unknown grant name is refused at its index."""
    error = _error({"clients": [{"client_id": "a", "grant_types": ["password", "implicit"]}]})
    assert error.path == "clients[0].grant_types[1]"


def test_duplicate_client() -> None:
    """Two clients with one client_id are refused."""
    error = _error({"clients": [{"client_id": "a"}, {"client_id": "a"}]})
    assert error.path == "clients[1].client_id"


def test_api_needs_audience() -> None:
    """An API without audience is refused."""
    assert _error({"apis": [{"scopes": ["x"]}]}).path == "apis[0].audience"


def test_user_needs_password() -> None:
    """A user without password is refused."""
    assert _error({"users": [{"username": "a"}]}).path == "users[0].password"


def test_duplicate_user() -> None:
    """Usernames are unique regardless of case."""
    error = _error(
        {"users": [{"username": "A", "password": "p"}, {"username": "a", "password": "p"}]}
    )
    assert error.path == "users[1].username"


def test_unknown_factor() -> None:
    """An unknown factor type names the factor's path."""
    error = _error({"users": [{"username": "a", "password": "p", "factors": ["fax"]}]})
    assert error.path == "users[0].factors[0].type"


def test_bad_otp_secret() -> None:
    """A non-base32 otp secret is refused."""
    error = _error(
        {
            "users": [
                {"username": "a", "password": "p", "factors": [{"type": "otp", "secret": "1!"}]}
            ]
        }
    )
    assert error.path == "users[0].factors[0].secret"


def test_sms_factor_needs_phone() -> None:
    """An sms factor without a phone anywhere is refused."""
    error = _error({"users": [{"username": "a", "password": "p", "factors": ["sms"]}]})
    assert error.path == "users[0].factors[0].phone_number"


def test_bad_recovery_code() -> None:
    """A recovery code must be 24 chars A-Z0-9."""
    error = _error({"users": [{"username": "a", "password": "p", "recovery_code": "short"}]})
    assert error.path == "users[0].recovery_code"


def test_wrong_type_of_value() -> None:
    """A wrong value type says what was expected and what came."""
    error = _error({"settings": {"mfa_required": "yes"}})
    assert error.path == "settings.mfa_required"
    assert "expected true or false, got 'yes'" in str(error)


def test_population_needs_one_placeholder() -> None:
    """A population username pattern without {n} is refused."""
    assert _error({"population": {"username": "fixed"}}).path == "population.username"


def test_population_pattern_error() -> None:
    """A password pattern with an unknown placeholder is refused."""
    error = _error({"population": {"password": "{m}"}})
    assert error.path == "population"


def test_population_list() -> None:
    """population may be a list."""
    config = parse_tenant(
        {"population": [{"username": "a{n}", "count": 5}, {"username": "b{n}", "count": 5}]}
    )
    assert [p.number("b3") for p in config.populations] == [None, 3]


def test_bad_bucket() -> None:
    """A limit needs burst and refill_every."""
    error = _error({"settings": {"limits": {"failed_codes": {"burst": 3}}}})
    assert error.path == "settings.limits.failed_codes"


def test_bad_status() -> None:
    """An error status must be 400-599."""
    error = _error({"settings": {"errors": {"slow_down_status": 200}}})
    assert error.path == "settings.errors.slow_down_status"


def test_bad_base_url() -> None:
    """base_url must be an http(s) URL."""
    assert _error({"settings": {"base_url": "tenant"}}).path == "settings.base_url"


def test_endpoint_limits() -> None:
    """Per-endpoint limits are read by path."""
    config = parse_tenant(
        {
            "settings": {
                "limits": {"endpoints": {"/oauth/token": {"burst": 30, "refill_every": 0.1}}}
            }
        }
    )
    assert config.settings.limits.endpoints["/oauth/token"].burst == 30


def test_unknown_factor_in_settings() -> None:
    """settings.factors accepts only known factor names."""
    assert _error({"settings": {"factors": ["otp", "fax"]}}).path == "settings.factors[1]"


def test_population_lookup_is_exact() -> None:
    """Generated usernames match only the formatted form and the range."""
    config = parse_tenant({"population": {"username": "u{n:03d}@x.test", "count": 10}})
    population = config.populations[0]
    assert population.number("u007@x.test") == 7
    assert population.number("u7@x.test") is None
    assert population.number("u011@x.test") is None
