"""From a read dump to files: time placement (timeline), redaction, units, the output
formats (json, ndjson, csv, libreview) and atomic writes. No device access."""
