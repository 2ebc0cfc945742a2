"""The optional JupyterHub service: one redirect URI per hub, per-user token custody (issue 14)."""
