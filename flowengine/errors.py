"""The whole error tree of flowengine.

Expected answers of the Auth0 API (a wrong code, ``mfa_required``, ``authorization_pending``)
are *outcomes*, not exceptions. Exceptions are for what a caller must handle::

    FlowEngineError
    ├── ConfigError(FlowEngineError, ValueError)        bad input: a file, a key, a value
    │   ├── TenantFileError                              the emulator's tenant file
    │   └── ScenarioError                                a scenario file in flows/
    ├── ApiError                                         talking to the Authentication API
    │   ├── TransportError(ApiError, ConnectionError)    the request never got an HTTP answer
    │   ├── RequestTimeout(ApiError, TimeoutError)       no answer within the request timeout
    │   ├── ProtocolError(ApiError, ValueError)          an answer that is not what Auth0 sends
    │   └── UnexpectedReply(ApiError)                    a well-formed error reply nobody expected
    ├── FlowError                                        one login flow could not finish
    │   ├── FactorError                                  a factor strategy failed
    │   │   ├── FactorTimeout(FactorError, TimeoutError) push never answered, code never came
    │   │   └── UnknownFactor(FactorError, LookupError)  no strategy registered under that name
    │   ├── FlowTimeout(FlowError, TimeoutError)         the whole login ran out of time
    │   ├── StepTimeout(FlowError, TimeoutError)         one step of it ran out of time
    │   └── TokenValidationError(FlowError)              an id_token that does not verify
    └── CredentialStoreError                             the credential store cannot read or write

Every error carries what it is about as attributes and in its message, never a secret.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ConfigError",
    "CredentialStoreError",
    "FactorError",
    "FactorTimeout",
    "FlowEngineError",
    "FlowError",
    "FlowTimeout",
    "ProtocolError",
    "RequestTimeout",
    "ScenarioError",
    "StepTimeout",
    "TenantFileError",
    "TokenValidationError",
    "TransportError",
    "UnexpectedReply",
    "UnknownFactor",
]


class FlowEngineError(Exception):
    """Root of every error flowengine raises on purpose."""


class ConfigError(FlowEngineError, ValueError):
    """Bad input: names the file (if any), the key path and what was expected."""

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None) -> None:
        self.source = source
        self.path = path
        where = ": ".join(part for part in (source, path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class TenantFileError(ConfigError):
    """The emulator's tenant file is unreadable or invalid."""


class ScenarioError(ConfigError):
    """A scenario file is unreadable or invalid."""


class ApiError(FlowEngineError):
    """Base of the errors met while talking to the Authentication API."""

    def __init__(self, message: str, *, endpoint: str, status: int | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(message)


class TransportError(ApiError, ConnectionError):
    """The request got no HTTP answer (refused, reset, DNS, TLS)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        sent: bool = True,
        lasting: bool = False,
    ) -> None:
        self.sent = sent
        """False when the connection failed before the request left (nothing was processed)."""
        self.lasting = lasting
        """True when trying again cannot help (a certificate that does not verify)."""
        super().__init__(message, endpoint=endpoint, status=status)


class RequestTimeout(ApiError, TimeoutError):
    """No complete answer within the request timeout."""


class ProtocolError(ApiError, ValueError):
    """The answer is not JSON, is truncated, or has the wrong shape."""


class UnexpectedReply(ApiError):
    """A well-formed error reply that the caller did not expect at this point."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        error: str = "",
        error_description: str = "",
    ) -> None:
        self.error = error
        self.error_description = error_description
        super().__init__(message, endpoint=endpoint, status=status)


class FlowError(FlowEngineError):
    """One login flow could not finish."""

    def __init__(
        self, message: str, *, state: str | None = None, factor: str | None = None
    ) -> None:
        self.state = state
        self.factor = factor
        super().__init__(message)


class FactorError(FlowError):
    """A factor strategy failed."""


class FactorTimeout(FactorError, TimeoutError):
    """A factor waited too long: a push never answered, a code never arrived."""


class UnknownFactor(FactorError, LookupError):
    """No factor strategy is registered under that name."""


class FlowTimeout(FlowError, TimeoutError):
    """The whole login ran past its deadline."""


class StepTimeout(FlowError, TimeoutError):
    """One step of a login ran past its deadline."""


class TokenValidationError(FlowError):
    """An id_token failed validation (signature, iss, aud, exp)."""


class CredentialStoreError(FlowEngineError):
    """The credential store cannot be read or written."""
