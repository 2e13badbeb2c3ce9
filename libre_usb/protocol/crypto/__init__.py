"""Libre 2/3 encryption: Speck64/128, CMAC, CTR and key derivation (primitives), and the
encrypted report layout, session cipher and both sides of the handshake (link)."""
