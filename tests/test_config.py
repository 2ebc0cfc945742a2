"""Profiles: where client ids and secrets come from, and where they may not."""

from __future__ import annotations

import os

import pytest

from nb_oauth2.auth.config import define_profile, env_name, load_profile
from nb_oauth2.core.errors import ConfigurationError, SecretOnCommandLine
from tests.conftest import CANARY_SECRET


@pytest.fixture
def profiles_file(tmp_path, monkeypatch):
    path = tmp_path / "profiles.toml"
    monkeypatch.setenv("NB_OAUTH2_PROFILES", str(path))
    return path


def test_env_names_are_documented_shape():
    assert env_name("github", "client_id") == "NB_OAUTH2_GITHUB_CLIENT_ID"
    assert env_name("my-api", "client_secret") == "NB_OAUTH2_MY_API_CLIENT_SECRET"


def test_client_id_and_secret_from_environment(monkeypatch, profiles_file):
    monkeypatch.setenv("NB_OAUTH2_GITHUB_CLIENT_ID", "gh-id")
    monkeypatch.setenv("NB_OAUTH2_GITHUB_CLIENT_SECRET", CANARY_SECRET)
    profile = load_profile("github")
    assert profile.client.client_id == "gh-id" and profile.client.client_secret == CANARY_SECRET
    assert CANARY_SECRET not in repr(profile) and CANARY_SECRET not in repr(profile.client)


def test_profiles_file_is_read_when_private(profiles_file):
    profiles_file.write_text('[profiles.work]\nprovider = "gitlab"\nbase_url = "https://git.example.org"\n'
                             f'client_id = "wid"\nclient_secret = "{CANARY_SECRET}"\nscope = ["read_api"]\n')
    os.chmod(profiles_file, 0o600)
    profile = load_profile("work")
    assert profile.provider.token_endpoint == "https://git.example.org/oauth/token"
    assert profile.scope == ("read_api",) and profile.client.client_secret == CANARY_SECRET


def test_group_readable_profiles_file_is_refused(profiles_file):
    """Case 40 neighbour: a secrets file readable by others is refused."""
    profiles_file.write_text('[profiles.work]\nprovider = "github"\nclient_id = "x"\n')
    os.chmod(profiles_file, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_profile("work")


def test_secrets_in_a_cell_defined_profile_are_refused(profiles_file):
    """Case 35: a secret typed in a cell is refused with a pointer to env/keyring/getpass."""
    with pytest.raises(SecretOnCommandLine) as info:
        define_profile("api", {"provider": "github", "client_id": "x", "client_secret": CANARY_SECRET})
    message = str(info.value)
    assert CANARY_SECRET not in message
    assert "NB_OAUTH2_API_CLIENT_SECRET" in message and "keyring" in message and "history" in message


def test_cell_defined_profile_is_used(profiles_file):
    define_profile("api2", {"provider": "spotify", "client_id": "sp-id", "scope": "a b"})
    profile = load_profile("api2")
    assert profile.provider.name == "spotify" and profile.scope == ("a", "b")


def test_missing_client_id_says_what_to_set(profiles_file, monkeypatch):
    monkeypatch.delenv("NB_OAUTH2_GOOGLE_CLIENT_ID", raising=False)
    with pytest.raises(ConfigurationError, match="NB_OAUTH2_GOOGLE_CLIENT_ID"):
        load_profile("google")


def test_unknown_profile_lists_the_ways_to_define_it(profiles_file):
    with pytest.raises(ConfigurationError, match="issuer"):
        load_profile("nowhere", client_id="x")


def test_unknown_flow_is_refused(profiles_file):
    with pytest.raises(ConfigurationError, match="Unknown flow"):
        load_profile("github", client_id="x", flow="magic")


def test_profiles_and_state_directories_follow_xdg_and_their_overrides(monkeypatch, tmp_path):
    """platformdirs on Linux: XDG_CONFIG_HOME / XDG_STATE_HOME, and NB_OAUTH2_PROFILES / NB_OAUTH2_STATE_DIR win."""
    import sys

    from nb_oauth2.auth.config import profiles_path
    from nb_oauth2.auth.store import default_store_dir

    if not sys.platform.startswith("linux"):
        pytest.skip("XDG directories are the Linux convention")
    for name in ("NB_OAUTH2_PROFILES", "NB_OAUTH2_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert profiles_path() == tmp_path / "config" / "nb_oauth2" / "profiles.toml"
    assert default_store_dir() == tmp_path / "state" / "nb_oauth2"
    monkeypatch.setenv("NB_OAUTH2_PROFILES", str(tmp_path / "mine.toml"))
    monkeypatch.setenv("NB_OAUTH2_STATE_DIR", str(tmp_path / "tokens"))
    assert profiles_path() == tmp_path / "mine.toml"
    assert default_store_dir() == tmp_path / "tokens"


def test_an_unknown_profile_name_gets_did_you_mean(monkeypatch, tmp_path):
    """Issue 12: a typo of a preset or of a defined profile is named; an unrelated name gets no guess."""
    import nb_oauth2 as oa

    monkeypatch.setenv("NB_OAUTH2_PROFILES", str(tmp_path / "none.toml"))
    oa.define_profile("warehouse", {"issuer": "https://id.example.com"})
    with pytest.raises(oa.ConfigurationError, match="Did you mean 'github'\\?"):
        oa.load_profile("githib")
    with pytest.raises(oa.ConfigurationError, match="Did you mean 'warehouse'\\?"):
        oa.load_profile("warehous")
    with pytest.raises(oa.ConfigurationError) as info:
        oa.load_profile("weather")
    assert "Did you mean" not in info.value.message
