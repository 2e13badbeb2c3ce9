"""The vendor upload (LibreView ``measurements`` JSON): build one from a dump, load captured
ones (raw bodies, HAR, mitmproxy flow files), diff them against a reader, and report.

- :mod:`.build`: :func:`build_upload` -- a :class:`~libre_usb.model.Dump` as upload JSON
  (``libre-dump dump --format libreview``)
- :mod:`.load`: :func:`load_uploads` -- captured uploads, chosen by content, bounded
- :mod:`.diff`: :func:`diff_uploads` -- reader records against uploaded entries, plus the
  privacy inventory of the upload
- :mod:`.report`: :func:`render` -- the result as text, JSON or self-contained HTML

The upload format itself is described in ``docs/privacy.md``; its main public source is
Juggluco's re-implementation of the LibreLink upload (github.com/j-kaltes/Juggluco,
``Common/src/main/cpp/net/libreview/libreview.cpp``), whose sample strings make up
``tests/data/juggluco-upload-example``.
"""

from __future__ import annotations
