# nb_oauth2 on JupyterHub: add these lines to jupyterhub_config.py (pip install "nb_oauth2[hub]" in the hub's
# environment and in the users' kernels). One redirect URI for the whole hub, registered once at the provider:
#     https://<your hub>/services/nb-oauth2/callback
# The profiles (provider, client id, client secret, scopes) go in the file NB_OAUTH2_HUB_CONFIG names (TOML,
# mode 0600, readable by the hub only); the vault key comes from the hub's environment:
#     export NB_OAUTH2_HUB_KEY=$(python -m nb_oauth2.hub --new-key)
import os
import sys

nb_oauth2_url = os.environ.get("NB_OAUTH2_HUB_SERVICE_URL", "http://127.0.0.1:10101")  # where the service listens

c.JupyterHub.services.append({
    "name": "nb-oauth2",
    "url": nb_oauth2_url,
    "command": [sys.executable, "-m", "nb_oauth2.hub"],
    "environment": {
        "NB_OAUTH2_HUB_KEY": os.environ["NB_OAUTH2_HUB_KEY"],
        "NB_OAUTH2_HUB_CONFIG": os.environ.get("NB_OAUTH2_HUB_CONFIG", "/etc/jupyterhub/nb_oauth2.toml"),
        "NB_OAUTH2_HUB_STATE": os.environ.get("NB_OAUTH2_HUB_STATE", "/srv/jupyterhub/nb_oauth2"),
        "NB_OAUTH2_HUB_FORGET_ON_RESTART": os.environ.get("NB_OAUTH2_HUB_FORGET_ON_RESTART", "0"),
    },
    "oauth_no_confirm": True,  # the hub's own "authorize nb-oauth2?" page is skipped
})
c.JupyterHub.custom_scopes.update({
    "custom:nb-oauth2:admin": {"description": "List and revoke every user's nb-oauth2 sessions."},
})
c.JupyterHub.load_roles.extend([
    # users open the service's sign-in links (hub OAuth); their servers' kernels call its API
    {"name": "user", "scopes": ["self", "access:services!service=nb-oauth2"]},
    {"name": "server", "scopes": ["users:activity!user", "access:servers!server",
                                  "access:services!service=nb-oauth2"]},
    # GET/DELETE .../admin/sessions; hub admins' full tokens (admin:users) may too, their servers' tokens may not
    {"name": "nb-oauth2-admin", "scopes": ["custom:nb-oauth2:admin"]},
])
c.Spawner.environment.update({"NB_OAUTH2_HUB_URL": nb_oauth2_url + "/services/nb-oauth2/"})
