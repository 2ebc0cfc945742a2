"""The ``nb-oauth2`` command line."""
