"""The optional JupyterHub service: one redirect URI per hub, per-user token custody (issue 14).

``python -m nb_oauth2.hub`` (:mod:`.app`) is run by the hub as a managed service (see
examples/jupyterhub_config.py); :mod:`.client` is the kernel's side. The service's modules:
:mod:`.config` (profiles, key, state dir), :mod:`.vault` (encrypted per-user records),
:mod:`.logins` (pending logins bound to the hub user), :mod:`.custody` (code exchange,
single-flight refresh, revocation), :mod:`.handlers` and :mod:`.pages` (HTTP).
Needs the ``hub`` extra (jupyterhub, tornado, cryptography); the client needs none of it.
"""
