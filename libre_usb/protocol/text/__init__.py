"""The text protocol: the checksummed text reply and multi-record trailer (reply), the
record parsers (records) and the informational replies (replies)."""
