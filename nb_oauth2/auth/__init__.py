"""The session layer: the auto-refreshing Session, token stores, the kernel's registry of named sessions, profiles and login attempts."""
