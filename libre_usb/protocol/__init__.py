"""Sans-I/O protocol layer: bytes in, events out. No file, socket, clock or USB access."""
