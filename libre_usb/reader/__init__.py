"""The reader layer: the session that drives the protocol over a transport, and the
Libre 2/3 encrypted link it runs before the clear exchange."""
