"""flowengine: asynchronous orchestration of Auth0's password grant with MFA."""

from __future__ import annotations

from flowengine.clock import Clock, ManualClock, SystemClock
from flowengine.errors import (
    ApiError,
    ConfigError,
    CredentialStoreError,
    FactorError,
    FactorTimeout,
    FlowEngineError,
    FlowError,
    FlowTimeout,
    ProtocolError,
    RequestTimeout,
    ScenarioError,
    StepTimeout,
    TenantFileError,
    TokenValidationError,
    TransportError,
    UnexpectedReply,
    UnknownFactor,
)

__all__ = [
    "ApiError",
    "Clock",
    "ConfigError",
    "CredentialStoreError",
    "FactorError",
    "FactorTimeout",
    "FlowEngineError",
    "FlowError",
    "FlowTimeout",
    "ManualClock",
    "ProtocolError",
    "RequestTimeout",
    "ScenarioError",
    "StepTimeout",
    "SystemClock",
    "TenantFileError",
    "TokenValidationError",
    "TransportError",
    "UnexpectedReply",
    "UnknownFactor",
]
