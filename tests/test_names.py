"""core/names.py: the names users type, read in one place."""

from __future__ import annotations

import pytest

from nb_oauth2.core.errors import ConfigurationError
from nb_oauth2.core.flows import FLOWS, DeviceFlow
from nb_oauth2.core.loopback import VIA_CHOICES as LOOPBACK_VIAS
from nb_oauth2.core.names import FLOW_CHOICES, GRANT_ALIASES, VIA_CHOICES, env_name, grant_name, split_list


@pytest.mark.parametrize("value, expected", [
    ("a b,c", ("a", "b", "c")),
    (" read:user ,, repo ", ("read:user", "repo")),
    ("", ()),
    (["a b", 1], ("a b", "1")),
    (("x",), ("x",)),
    (None, None),
    (42, None),
])
def test_split_list(value, expected):
    assert split_list(value) == expected


def test_env_name_slugs_the_profile():
    assert env_name("github", "client_id") == "NB_OAUTH2_GITHUB_CLIENT_ID"
    assert env_name("my-api.v2", "key_passphrase") == "NB_OAUTH2_MY_API_V2_KEY_PASSPHRASE"


def test_grant_name_reads_aliases_and_refuses_others():
    assert grant_name("Device") == "device_code" and grant_name("code") == "authorization_code"
    assert grant_name(None) is None
    with pytest.raises(ConfigurationError, match="code, device, implicit, password, client_credentials"):
        grant_name("carrier-pigeon")


def test_every_alias_and_choice_has_a_flow():
    assert set(FLOWS) == set(GRANT_ALIASES) and set(FLOW_CHOICES) <= set(GRANT_ALIASES)
    assert FLOWS["device"] is FLOWS["device_code"] is DeviceFlow
    assert all(FLOWS[alias].grant == grant for alias, grant in GRANT_ALIASES.items())
    assert set(VIA_CHOICES) == set(LOOPBACK_VIAS)
