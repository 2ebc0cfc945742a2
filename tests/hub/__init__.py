"""A real JupyterHub on 127.0.0.1 for browser tests (see :mod:`tests.hub.fixture`).

Use it from a test module with ``from tests.hub import jupyterhub  # noqa: F401``
(the pytest fixture), or start a :class:`Hub` yourself.
"""

from tests.hub.fixture import USERS, Hub, hub_skip_reason, jupyterhub

__all__ = ["Hub", "USERS", "hub_skip_reason", "jupyterhub"]
