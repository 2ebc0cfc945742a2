"""The notebook front: %oauth2 magics, the login widget, status tables and the choice of login UI."""
