"""Factor strategies: one class per MFA factor, found by name in a registry.

Importing this package registers the built-in factors (``otp``, ``sms``, ``voice``,
``email``, ``push``, ``recovery-code``); :func:`load_entry_points` adds third parties'.
"""

from __future__ import annotations

from flowengine.factors.base import (
    ENTRY_POINT_GROUP,
    FactorContext,
    FactorStrategy,
    MfaApi,
    Pending,
    get_strategy,
    load_entry_points,
    pending_from_association,
    register,
    registered_factors,
)
from flowengine.factors.codes import (
    CallbackCodeSource,
    CodeSource,
    EmulatorInbox,
    PromptCodeSource,
)
from flowengine.factors.oob import EmailFactor, OobCodeFactor, SmsFactor, VoiceFactor
from flowengine.factors.otp import OtpFactor, totp_code
from flowengine.factors.push import PushFactor
from flowengine.factors.recovery import RecoveryCodeFactor

__all__ = [
    "CallbackCodeSource",
    "CodeSource",
    "ENTRY_POINT_GROUP",
    "EmailFactor",
    "EmulatorInbox",
    "FactorContext",
    "FactorStrategy",
    "MfaApi",
    "OobCodeFactor",
    "OtpFactor",
    "Pending",
    "PromptCodeSource",
    "PushFactor",
    "RecoveryCodeFactor",
    "SmsFactor",
    "VoiceFactor",
    "get_strategy",
    "load_entry_points",
    "pending_from_association",
    "register",
    "registered_factors",
    "totp_code",
]
