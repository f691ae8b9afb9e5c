"""flowengine: asynchronous orchestration of Auth0's password grant with MFA."""

from __future__ import annotations

from flowengine.clock import Clock, ManualClock, SystemClock
from flowengine.config import EngineConfig
from flowengine.credentials import CredentialStore, InMemoryCredentials, UserCredentials
from flowengine.engine import Engine
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
from flowengine.result import LoginResult, StepRecord

__all__ = [
    "ApiError",
    "Clock",
    "ConfigError",
    "CredentialStore",
    "CredentialStoreError",
    "Engine",
    "EngineConfig",
    "FactorError",
    "FactorTimeout",
    "FlowEngineError",
    "FlowError",
    "FlowTimeout",
    "InMemoryCredentials",
    "LoginResult",
    "ManualClock",
    "ProtocolError",
    "RequestTimeout",
    "ScenarioError",
    "StepRecord",
    "StepTimeout",
    "SystemClock",
    "TenantFileError",
    "TokenValidationError",
    "TransportError",
    "UnexpectedReply",
    "UnknownFactor",
    "UserCredentials",
]
