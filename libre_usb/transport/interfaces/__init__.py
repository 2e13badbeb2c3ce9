"""Transport backends, one module per device URI scheme (see ``transport/interface.py``)."""
