"""The protocol core: errors, redaction, tokens, providers, transport rules, TLS, endpoints, redirects and the grant flows. Imports nothing else from nb_oauth2."""
