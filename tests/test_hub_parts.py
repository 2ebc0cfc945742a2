"""Issue 14: the parts of nb_oauth2.hub without a hub (configuration, vault, pending logins, custody, client).

The real-hub tests are in tests/test_hub_service.py; here the custody talks to the demo provider on
127.0.0.1 and the event loop is asyncio's, so the decisions are checked in a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time

import pytest

pytest.importorskip("cryptography")
pytest.importorskip("jupyterhub")

from cryptography.fernet import Fernet, MultiFernet  # noqa: E402

from nb_oauth2 import demo  # noqa: E402
from nb_oauth2.core.endpoint import ClientAuth  # noqa: E402
from nb_oauth2.core.errors import ConfigurationError, IssuerMismatch, ReauthRequired  # noqa: E402
from nb_oauth2.core.providers import discover  # noqa: E402
from nb_oauth2.core.token import Token  # noqa: E402
from nb_oauth2.hub.client import HubService  # noqa: E402
from nb_oauth2.hub.config import HubConfig, HubProfile, load_config  # noqa: E402
from nb_oauth2.hub.custody import Custody, public_view  # noqa: E402
from nb_oauth2.hub.logins import Logins  # noqa: E402
from nb_oauth2.hub.vault import Vault  # noqa: E402

REDIRECT = "http://127.0.0.1:8000/services/nb-oauth2/callback"


def _key() -> MultiFernet:
    return MultiFernet([Fernet(Fernet.generate_key())])


# -- configuration -------------------------------------------------------------------------


def test_config_needs_a_key_a_state_dir_and_client_ids(tmp_path):
    with pytest.raises(ConfigurationError, match="NB_OAUTH2_HUB_KEY"):
        load_config({"NB_OAUTH2_HUB_STATE": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="not a Fernet key") as caught:
        load_config({"NB_OAUTH2_HUB_KEY": "s3cr3t-but-wrong", "NB_OAUTH2_HUB_STATE": str(tmp_path)})
    assert "s3cr3t" not in str(caught.value)
    key = Fernet.generate_key().decode()
    with pytest.raises(ConfigurationError, match="state directory"):
        load_config({"NB_OAUTH2_HUB_KEY": key})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"profiles": {"x": {"preset": "github"}}}))
    with pytest.raises(ConfigurationError, match="client_id"):
        load_config({"NB_OAUTH2_HUB_KEY": key, "NB_OAUTH2_HUB_STATE": str(tmp_path), "NB_OAUTH2_HUB_CONFIG": str(bad)})


def test_config_reads_profiles_from_toml_and_keeps_the_secret_out_of_reprs(tmp_path):
    file = tmp_path / "hub.toml"
    file.write_text('forget_on_restart = true\n[profiles.gh]\npreset = "github"\nclient_id = "Iv1.abc"\n'
                    'client_secret = "canary-client-secret"\nscopes = "read:user repo"\n'
                    '[profiles.own]\nclient_id = "c"\nauthorization_endpoint = "https://as.example/authorize"\n'
                    'token_endpoint = "https://as.example/token"\n')
    key = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"  # rotation: the first encrypts
    config = load_config({"NB_OAUTH2_HUB_KEY": key, "NB_OAUTH2_HUB_STATE": str(tmp_path / "s"),
                          "NB_OAUTH2_HUB_CONFIG": str(file)})
    assert config.forget_on_restart and sorted(config.profiles) == ["gh", "own"]
    gh = config.profiles["gh"]
    assert gh.scopes == ("read:user", "repo") and gh.client.client_secret == "canary-client-secret"
    assert "canary-client-secret" not in repr(config) and "canary-client-secret" not in repr(gh)
    assert config.profiles["own"].provider.token_endpoint == "https://as.example/token"


def test_the_example_profiles_file_parses(tmp_path, monkeypatch):
    """examples/nb_oauth2_hub.toml (the README's profiles file) is a valid config (discovery not run)."""
    import nb_oauth2.hub.config as config_module
    from pathlib import Path

    monkeypatch.setattr(config_module, "discover", lambda issuer, name: config_module.Provider(name=name, issuer=issuer))
    example = Path(__file__).resolve().parent.parent / "examples" / "nb_oauth2_hub.toml"
    config = load_config({"NB_OAUTH2_HUB_KEY": Fernet.generate_key().decode(), "NB_OAUTH2_HUB_STATE": str(tmp_path),
                          "NB_OAUTH2_HUB_CONFIG": str(example)})
    assert sorted(config.profiles) == ["company", "github"] and not config.forget_on_restart


# -- vault -------------------------------------------------------------------------------------


def test_vault_records_are_encrypted_private_and_survive_a_new_instance(tmp_path, caplog):
    key = _key()
    vault = Vault(tmp_path / "vault", key)
    vault.put("alice", "gh", {"access_token": "canary-access", "refresh_token": "canary-refresh"})
    vault.put("bob", "gh", {"access_token": "b"})
    assert stat.S_IMODE((tmp_path / "vault").stat().st_mode) == 0o700
    files = list((tmp_path / "vault").glob("*.vault"))
    assert len(files) == 2 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert all(b"canary" not in f.read_bytes() and b"alice" not in f.read_bytes() for f in files)
    again = Vault(tmp_path / "vault", key)  # a restart with the same key
    assert again.get("alice", "gh")["refresh_token"] == "canary-refresh"
    assert sorted(user for user, _ in again.records()) == ["alice", "bob"]
    other = Vault(tmp_path / "vault", _key())  # another key: reads as empty, says so without details
    with caplog.at_level(logging.WARNING):
        assert other.load("alice") == {}
    assert "could not be decrypted" in caplog.text
    assert again.delete("alice", "gh") and again.load("alice") == {}
    assert again.wipe() == 1 and list(again.records()) == []


# -- pending logins ---------------------------------------------------------------------------


class _Flow:
    def __init__(self, state: str) -> None:
        self.expected_state = state


def test_a_pending_login_is_bound_to_its_user_and_its_state_is_single_use():
    """Case 9 on the service: the same state twice, or another user's state, finds no login."""
    logins = Logins(ttl=60)
    login = logins.create("alice", "gh")
    assert logins.get(login.id, "bob") is None and logins.owner(login.id) == "alice"
    logins.started(login, _Flow("state-1"))
    assert logins.holder("state-1") == "alice"
    assert logins.take("state-1", "bob") is None  # bob's browser: nothing, alice's login untouched
    assert login.describe()["status"] == "pending"
    taken = logins.take("state-1", "alice")
    assert taken is login and logins.take("state-1", "alice") is None
    logins.give_back(login, "state-1")  # a refused callback (wrong iss): usable again
    assert logins.take("state-1", "alice") is login
    login.finish("done")
    assert login.describe() == {"id": login.id, "profile": "gh", "status": "done"}


def test_an_expired_login_reports_failed_and_cannot_be_taken():
    logins = Logins(ttl=60)
    login = logins.create("alice", "gh")
    logins.started(login, _Flow("s"))
    login.expires_at = time.time() - 1
    assert logins.take("s", "alice") is None
    assert login.describe()["status"] == "failed" and "expired" in login.describe()["error"]


# -- custody against the demo provider ------------------------------------------------------


@pytest.fixture
def custody(tmp_path):
    with demo.start(access_token_ttl=60) as provider:
        web = provider.clients["web"]
        profile = HubProfile(name="demo", provider=discover(provider.url, name="demo"),
                             client=ClientAuth(web.client_id, web.client_secret), scopes=("read:events",))
        config = HubConfig(profiles={"demo": profile}, key=_key(), state_dir=tmp_path)
        keeper = Custody(config, Vault(tmp_path / "vault", config.key))
        keeper.provider = provider
        yield keeper


def _sign_in(custody: Custody, user: str = "alice") -> None:
    flow = custody.new_flow("demo", REDIRECT)
    step = flow.start()
    callback = custody.provider.driver.authorize(step.authorization_url, username=user)
    asyncio.run(custody.complete(user, "demo", flow, callback))


def test_custody_exchanges_the_code_and_refreshes_once_for_many_concurrent_kernels(custody):
    """Case 49 in the service: 20 concurrent requests for a due token -> exactly one refresh grant."""
    _sign_in(custody)
    stored = custody.vault.get("alice", "demo")
    assert stored["refresh_token"] and "refresh_token" not in public_view(Token.from_dict(stored))
    stored["received_at"], stored["expires_at"] = time.time() - 59, time.time() + 1  # due: in the margin
    custody.vault.put("alice", "demo", stored)
    before = custody.provider.token_requests

    async def many():
        return await asyncio.gather(*(custody.access("alice", "demo") for _ in range(20)))

    tokens = asyncio.run(many())
    assert custody.provider.token_requests - before == 1
    assert len({t.access_token for t in tokens}) == 1 and tokens[0].access_token != stored["access_token"]
    assert custody.vault.get("alice", "demo")["refresh_token"] != stored["refresh_token"]  # rotated, committed


def test_a_refused_refresh_token_asks_for_a_new_sign_in_and_is_forgotten(custody):
    """Case 17 in the service: invalid_grant -> ReauthRequired, the record purged, no second try."""
    _sign_in(custody)
    stored = custody.vault.get("alice", "demo")
    stored["expires_at"] = time.time() - 1
    custody.vault.put("alice", "demo", stored)
    custody.provider.revoke_all()
    with pytest.raises(ReauthRequired, match="sign in again"):
        asyncio.run(custody.access("alice", "demo"))
    assert custody.vault.get("alice", "demo") is None
    with pytest.raises(ReauthRequired):
        asyncio.run(custody.access("bob", "demo"))


def test_a_callback_from_another_issuer_is_refused_before_the_token_request(custody):
    """Case 53: a wrong iss -> IssuerMismatch, nothing sent to the token endpoint, the flow still pending."""
    flow = custody.new_flow("demo", REDIRECT)
    flow.start()
    callback = custody.provider.driver.authorize(flow.start().authorization_url)
    before = custody.provider.token_requests
    with pytest.raises(IssuerMismatch):
        asyncio.run(custody.complete("alice", "demo", flow, callback.replace("iss=", "iss=https%3A%2F%2Fx&y=")))
    assert custody.provider.token_requests == before and flow.pending
    asyncio.run(custody.complete("alice", "demo", flow, callback))
    assert custody.vault.get("alice", "demo")


def test_logout_revokes_at_the_provider_and_the_admin_view_shows_no_token(custody):
    _sign_in(custody)
    stored = custody.vault.get("alice", "demo")
    rows = custody.sessions()
    assert [r["user"] for r in rows] == ["alice"] and rows[0]["fingerprint"].startswith("sha256:")
    assert stored["access_token"] not in json.dumps(rows) and stored["refresh_token"] not in json.dumps(rows)
    assert asyncio.run(custody.logout("alice", "demo", revoke=True)) == {"signed_in": False, "revoked": True}
    validator = custody.provider.validator
    assert validator.refresh[stored["refresh_token"]]["revoked"]
    assert custody.vault.get("alice", "demo") is None


def test_forget_on_restart_wipes_the_vault_when_the_service_starts(tmp_path):
    from nb_oauth2.hub.app import Service

    config = HubConfig(profiles={}, key=_key(), state_dir=tmp_path)
    Service(config, hub_auth=object()).vault.put("alice", "demo", {"access_token": "a"})
    assert Service(config, hub_auth=object()).vault.get("alice", "demo") == {"access_token": "a"}  # kept
    config.forget_on_restart = True
    assert Service(config, hub_auth=object()).vault.get("alice", "demo") is None


# -- the kernel's side ---------------------------------------------------------------------------


def test_the_client_detects_the_service_only_behind_a_hub():
    assert HubService.detect({}) is None
    assert HubService.detect({"NB_OAUTH2_HUB_URL": "http://127.0.0.1:1/services/nb-oauth2/"}) is None
    found = HubService.detect({"JUPYTERHUB_API_TOKEN": "canary-hub-token", "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
                               "NB_OAUTH2_HUB_URL": "http://127.0.0.1:1/services/nb-oauth2"})
    assert found.url == "http://127.0.0.1:1/services/nb-oauth2/" and "canary-hub-token" not in repr(found)


def test_outside_a_hub_the_usual_login_is_a_kernel_login(monkeypatch):
    """Without JUPYTERHUB_API_TOKEN/URL no service is looked for (no network); with a Profile object, a grant,
    via, client options or a device hook the login stays in the kernel even behind a hub."""
    from nb_oauth2.jupyter import hub_login

    for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "NB_OAUTH2_HUB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_login, "_detected", {})
    assert hub_login.service_for("github", flow=None, via="auto", local_only=False, options={}) is None
    monkeypatch.setattr(hub_login, "_detect", lambda: pytest.fail("the hub was asked"))
    for kwargs in ({"flow": "device"}, {"via": "paste"}, {"local_only": True}, {"options": {"client_id": "x"}}):
        args = {"flow": None, "via": "auto", "local_only": False, "options": {}, **kwargs}
        assert hub_login.service_for("github", **args) is None
    assert hub_login.service_for(object(), flow=None, via="auto", local_only=False, options={}) is None


def test_the_hub_login_widget_holds_no_secret_and_ends_without_its_link():
    """Case 39 for the hub's widget: its state is the title, the service's link and the pending line; once
    over, the link and the pending line are closed and the status names a fingerprint, never a token."""
    from nb_oauth2.jupyter.hub_login import HubLoginView

    view = HubLoginView("gh", "github", "https://hub.example/services/nb-oauth2/start/abc?x=<b>", waiting_cell=True)
    try:
        texts = [child.value for child in view.box.children]
        assert any('href="https://hub.example/services/nb-oauth2/start/abc?x=&lt;b&gt;"' in t for t in texts)
        assert "Stop (■) cancels" in " ".join(texts) and "<b>Sign in to github</b>" in texts[0]
        assert "profile <code>github</code>" in texts[0]
        assert "nb-oauth2-login-static" in view._repr_mimebundle_()["text/html"]
    finally:
        view.end("Signed in as profile gh through this hub's nb-oauth2 service (sha256:abcd).", kind="ok")
    assert [child.value for child in view.box.children][1:] == [view._status.value]
    assert view.status_text.startswith("Signed in as profile gh") and "sha256:abcd" in view.status_text


def test_the_readme_snippet_is_the_tested_jupyterhub_config():
    """Issue 14: README "On JupyterHub" shows examples/jupyterhub_config.py verbatim, the file
    tests/test_hub_service.py runs the real hub with."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## On JupyterHub\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M)
    if section is None:
        pytest.skip("README has no 'On JupyterHub' section yet (the lead adds it)")
    block = re.search(r"```python\n(.*?)```", section.group(1), flags=re.S)
    assert block is not None, "the section has no ```python block"
    assert block.group(1).strip() == (root / "examples" / "jupyterhub_config.py").read_text(encoding="utf-8").strip()


def test_a_profile_without_pkce_is_warned_about_once_at_start_without_its_secret(tmp_path, caplog):
    """Issue 14: ``pkce = false`` lets a stolen code be redeemed in another user's login: one WARNING per
    such profile when the service starts, naming it and the risk, never the client secret."""
    from nb_oauth2.core.providers import Provider
    from nb_oauth2.hub.app import Service

    provider = Provider(name="p", authorization_endpoint="https://as.example/a", token_endpoint="https://as.example/t")
    profiles = {name: HubProfile(name=name, provider=provider, client=ClientAuth("c", "canary-client-secret"),
                                 pkce=pkce) for name, pkce in (("safe", "S256"), ("old", None), ("legacy", None))}
    config = HubConfig(profiles=profiles, key=_key(), state_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="nb_oauth2.hub"):
        Service(config, hub_auth=object())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "'legacy'" in warnings[0] and "'old'" in warnings[1]
    assert all("PKCE" in w and "stolen authorization code" in w for w in warnings)
    assert not any("canary-client-secret" in w or "'safe'" in w for w in warnings)


def test_a_pkce_false_profile_file_is_read_as_no_pkce(tmp_path):
    """``pkce = false`` in the service's file is what the start-up warning looks for."""
    from nb_oauth2.hub.config import pkce_warnings

    file = tmp_path / "hub.toml"
    file.write_text('[profiles.own]\nclient_id = "c"\npkce = false\nauthorization_endpoint = "https://as.example/a"\n'
                    'token_endpoint = "https://as.example/t"\n')
    config = load_config({"NB_OAUTH2_HUB_KEY": Fernet.generate_key().decode(), "NB_OAUTH2_HUB_STATE": str(tmp_path),
                          "NB_OAUTH2_HUB_CONFIG": str(file)})
    assert config.profiles["own"].pkce is None
    assert len(pkce_warnings(config)) == 1 and "'own'" in pkce_warnings(config)[0]


def test_the_vault_record_names_the_provider_user_from_the_id_token_and_keeps_it_across_refreshes():
    """Issue 14: the id_token's claims name the user (identity.who's order); a refreshed token without an
    id_token keeps the name; public_view (what kernels get) never carries the id_token."""
    import base64

    from nb_oauth2.hub.custody import USER_FIELD, record

    def jwt(claims: dict) -> str:
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"eyJhbGciOiJub25lIn0.{body}.sig"

    signed_in = Token(access_token="a1", refresh_token="r1", id_token=jwt({"sub": "u1", "email": "eve@example.org"}))
    first = record(signed_in)
    assert first[USER_FIELD] == "eve@example.org" and Token.from_dict(first).access_token == "a1"
    refreshed = record(Token(access_token="a2", refresh_token="r2"), first)
    assert refreshed[USER_FIELD] == "eve@example.org"
    assert record(Token(access_token="a3", id_token=jwt({"sub": "u2"})), first)[USER_FIELD] == "u2"
    assert USER_FIELD not in record(Token(access_token="a4"))
    assert "id_token" not in public_view(signed_in) and signed_in.id_token not in repr(public_view(signed_in))
