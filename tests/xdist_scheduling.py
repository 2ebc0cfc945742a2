"""How pytest-xdist shares the suite between its workers (pyproject.toml: ``-n auto --dist loadgroup``).

Two rules, for a 2-core machine where the browser, JupyterHub and kernel tests take about half of the time:

- The slow modules go first (:data:`FIRST`, in that order): they start at once, on different workers,
  while the many quick tests fill the gaps; none of them is left to run alone at the end.
- A module that starts something expensive once for all its tests (a real hub, five notebooks' kernels,
  child processes, servers with 5 s tokens: a module-scoped fixture) runs whole on one worker
  (:data:`WHOLE`), so the fixture still starts once. Every other test is scheduled on its own.

pytest-xdist's own ``loadgroup`` groups tests by appending ``@group`` to node ids, which pytest 9.2 no
longer takes (pytest-xdist issue 1386: the ``xdist_group`` marks are silently ignored), so the groups
are named here, by module, and :class:`ModuleGroupScheduling` reads them from the node ids as they are.
A module missing from :data:`WHOLE` still passes: its module fixtures just start once per worker.
"""

from __future__ import annotations

from typing import Any

#: Run first, in this order (a real JupyterHub; JupyterLab in Chromium; notebooks in kernels; the CLI's Lab).
FIRST = ("tests/test_hub_quickstart.py", "tests/test_hub_service.py", "tests/test_browser.py", "tests/test_run_all.py",
         "tests/test_notebooks.py",
         "tests/test_unattended.py", "tests/test_headless.py", "tests/test_cli.py")
#: Modules whose tests all run on one worker (their module-scoped fixtures start once).
WHOLE = FIRST + ("tests/test_lifetimes.py", "tests/test_hostile_pages.py", "tests/test_demo_api.py",
                 "tests/test_tls.py")


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def order_items(items: list[Any]) -> None:
    """The :data:`FIRST` modules to the front (stable: every worker collects the same order)."""
    rank = {module: index for index, module in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(module_of(item.nodeid), len(rank)))


def make_scheduler(config: Any, log: Any) -> Any:
    """pytest-xdist's loadgroup scheduler, grouping the :data:`WHOLE` modules, in collection order."""
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group mark, should pytest-xdist pass it on
                return super()._split_scope(nodeid)
            module = module_of(nodeid)
            return module if module in WHOLE else nodeid

    config.option.loadscopereorder = False  # keep collection order: FIRST, then the rest as collected
    return ModuleGroupScheduling(config, log)
