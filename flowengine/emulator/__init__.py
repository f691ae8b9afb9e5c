"""An Auth0-compatible emulator of the password grant with MFA (aiohttp.web).

``create_app(config, clock=...)`` builds the application; its state (users, inboxes,
pushes) is ``app[STATE_KEY]``. The wire contract is ``shared/reference/auth0-mfa-api.md``.
"""

from __future__ import annotations

from flowengine.emulator.app import create_app
from flowengine.emulator.config import EmulatorConfig
from flowengine.emulator.http import STATE_KEY
from flowengine.emulator.store import EmulatorState
from flowengine.emulator.tenant import load_tenant

__all__ = [
    "EmulatorConfig",
    "EmulatorState",
    "STATE_KEY",
    "create_app",
    "load_tenant",
]
