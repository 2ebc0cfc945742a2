"""The demo autopilot: in headless runs of the tutorials the demo provider's driver plays the user.

Enabled by ``NB_OAUTH2_DEMO_AUTOPILOT=1`` (``nb-oauth2 demo --headless`` and the
project's notebook tests), for the demo profile only.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from ..core.flows import Step
from ..auth.attempt import Browser, LoginAttempt
from ..auth.demo_profile import running_demo
from .frontend import in_notebook

__all__ = ["AUTOPILOT_ENV", "autopilot_enabled", "autopilot"]

AUTOPILOT_ENV = "NB_OAUTH2_DEMO_AUTOPILOT"


def autopilot_enabled(attempt: LoginAttempt) -> bool:
    """Headless runs of the tutorials: the demo's driver plays the user (demo profile only)."""
    return os.environ.get(AUTOPILOT_ENV) == "1" and attempt.provider_name == "demo"


def autopilot(attempt: LoginAttempt) -> tuple[Browser, Callable[[Step], None], str, str]:
    """The driver's ``browser``, device approver, and the first demo user's name and password."""
    demo = running_demo()
    user, secret = next(iter(demo.users.items()))

    def approve(step: Step) -> None:
        threading.Timer(0.2, demo.driver.approve_device, args=(step.user_code,)).start()

    if in_notebook():
        from IPython.display import HTML, display

        display(HTML(f"<p>Autopilot ({AUTOPILOT_ENV}=1): the demo provider's test driver signs in as "
                     f"<b>{user}</b> instead of you.</p>"))
    return demo.driver.authorize, approve, user, secret
