"""The package's face: public names, no Jupyter import, no global oauthlib flags."""

from __future__ import annotations

import os
import subprocess
import sys

import nb_oauth2

EXPECTED_PUBLIC = {
    "login", "LoginAttempt", "session", "sessions", "set_default", "logout",
    "read_json", "iter_pages", "iter_records", "to_parquet", "read_graphql", "read_json_post",
    "LinkPaginator", "BodyNextPaginator", "CursorPaginator", "PagePaginator", "OffsetPaginator",
    "StartingAfterPaginator", "NextPageHeaderPaginator", "SkipPaginator",
    "Session", "Token", "Provider", "Profile", "ClientAuth",
    "PRESETS", "preset", "discover", "load_profile", "define_profile", "env_name", "running_demo",
    "install_log_redaction", "load_ipython_extension",
    "LegacyGrantWarning", "ScopeChangedWarning", "InsecureStoreWarning", "__version__",
}
#: importable from their modules, not from the top level
INTERNAL = {
    "nb_oauth2.core.flows": ("Step", "Flow", "AuthorizationCodeFlow", "ImplicitFlow", "PasswordFlow",
                             "ClientCredentialsFlow", "DeviceFlow", "FLOWS"),
    "nb_oauth2.core.errors": ("error_from_response",),
    "nb_oauth2.core.names": ("split_list", "grant_name", "GRANT_ALIASES", "FLOW_CHOICES", "VIA_CHOICES"),
}


def test_all_is_pinned():
    """__all__ is the user's API plus the error tree; every name resolves (lazy ones too)."""
    errors = set(nb_oauth2.core.errors.__all__)
    assert all(issubclass(getattr(nb_oauth2.core.errors, n), nb_oauth2.core.errors.OAuth2Error) for n in errors)
    assert set(nb_oauth2.__all__) == EXPECTED_PUBLIC | errors
    assert len(nb_oauth2.__all__) == len(set(nb_oauth2.__all__))
    for name in nb_oauth2.__all__:
        assert getattr(nb_oauth2, name) is not None


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from nb_oauth2 import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(nb_oauth2.__all__)


def test_flow_classes_and_helpers_live_in_their_modules_only():
    import importlib

    for module_name, names in INTERNAL.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert getattr(module, name) is not None, (module_name, name)
            assert name not in nb_oauth2.__all__
            assert not hasattr(nb_oauth2, name), f"nb_oauth2.{name} should not be top-level"
    assert not hasattr(nb_oauth2, "prepare_login")  # LoginAttempt(profile, ...) is the one way


def test_error_classes_are_the_ones_in_core_errors():
    for name in nb_oauth2.core.errors.__all__:
        assert getattr(nb_oauth2, name) is getattr(nb_oauth2.core.errors, name)
    assert issubclass(nb_oauth2.ReauthRequired, nb_oauth2.OAuth2Error)


def test_import_loads_neither_ipython_nor_ipywidgets_nor_pandas():
    code = ("import sys, nb_oauth2; bad=[m for m in ('IPython','ipywidgets','pandas') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.stdout.strip() == ""


def test_no_process_wide_oauthlib_flags_are_set():
    for name in ("OAUTHLIB_INSECURE_TRANSPORT", "OAUTHLIB_RELAX_TOKEN_SCOPE"):
        assert name not in os.environ


def test_oauthlib_still_refuses_http_to_remote_hosts():
    """Only loopback http is widened, and only inside nb_oauth2's own calls; remote http still fails."""
    from oauthlib.oauth2.rfc6749 import parameters

    from nb_oauth2.core.transport import loopback_http_allowed

    with loopback_http_allowed():
        assert parameters.is_secure_transport("http://127.0.0.1:5/x")
        assert parameters.is_secure_transport("http://[::1]:5/x")
        assert not parameters.is_secure_transport("http://example.com/x")
        assert not parameters.is_secure_transport("http://127.0.0.1.evil.example/x")
    assert not parameters.is_secure_transport("http://127.0.0.1:5/x")  # outside: oauthlib's own answer


def test_dead_error_class_is_gone():
    """RevocationIncomplete was never raised; it is no longer public."""
    assert "RevocationIncomplete" not in nb_oauth2.__all__ and not hasattr(nb_oauth2.core.errors, "RevocationIncomplete")


def test_every_error_repr_is_class_and_code_only():
    err = nb_oauth2.InvalidGrant("The code abc was rejected", error="invalid_grant")
    assert repr(err) == "InvalidGrant(error='invalid_grant')"


def test_registry_survives_reimport():
    """Case 45: re-importing the package keeps the kernel's sessions."""
    import importlib

    from nb_oauth2.auth import registry

    sentinel = object()
    state = registry._state()
    state.sessions["keep"] = sentinel
    try:
        importlib.reload(registry)
        assert registry._state().sessions["keep"] is sentinel
    finally:
        state.sessions.pop("keep", None)


def test_warnings_point_at_the_callers_line(demo_provider):
    """A legacy-grant warning names the user's file, not nb_oauth2's internals."""
    import warnings

    client = demo_provider.clients["password"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb_oauth2.login("legacy", issuer=demo_provider.issuer, client_id=client.client_id,
                        client_secret=client.client_secret, flow="password", username="alice", password="wonderland")
    legacy = [w for w in caught if issubclass(w.category, nb_oauth2.LegacyGrantWarning)]
    assert legacy and legacy[0].filename == __file__
