"""A local HTTP server that behaves like Voyado Engage's contact API (v2).

Start it standalone with `python -m local.engage_sandbox --port 0`, or
in-process with `EngageSandbox().start()`. Admin routes live under `/_sandbox/`.
"""

from .server import EngageSandbox
from .state import DEMO_CONTACTS, SandboxState

__all__ = ["DEMO_CONTACTS", "EngageSandbox", "SandboxState"]
