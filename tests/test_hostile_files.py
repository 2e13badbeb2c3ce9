"""Hostile input files for ``replay`` and ``diff``: a one-line error, exit 2, bounded memory.

Transcripts (``--device replay:FILE``), captured uploads (``diff UPLOAD``) and saved dumps
(``diff --dump FILE``) come from outside. Each case below is run through the CLI in-process
with tracemalloc on; the peak of Python allocations must stay within a bound far below
the size the file would expand to.
"""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from captures import UPLOAD_EXAMPLE, need
from click.testing import CliRunner
from docpaths import replaced

from libre_usb.cli import main
from libre_usb.errors import EXIT_INPUT
from libre_usb.protocol.frames import build_report

MiB = 1 << 20
UPLOAD = need(UPLOAD_EXAMPLE)


class Run:
    def __init__(self, args: list[str]) -> None:
        tracemalloc.start()
        try:
            result = CliRunner().invoke(main, args)
            self.peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, repr(result.exception))
        self.code, self.out, self.err = result.exit_code, result.stdout, result.stderr
        assert "Traceback" not in self.err


def assert_input_error(run: Run, says: str, peak: int) -> None:
    assert run.code == EXIT_INPUT, run.err
    assert run.err.startswith("libre-dump: error: ") and run.err.count("\n") == 1, run.err
    assert says in run.err, run.err
    assert run.out == ""
    assert run.peak < peak, f"peak {run.peak / MiB:.1f} MiB"


def line(**fields: Any) -> str:
    return json.dumps(fields) + "\n"


OUT = build_report(0x04).hex()


def _gzip_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    chunk = b" " * MiB
    parts = [compressor.compress(b"[")] + [compressor.compress(chunk)
                                          for _ in range(size // MiB)]
    return b"".join([*parts, compressor.compress(b"1]"), compressor.flush()])


# -- transcripts -------------------------------------------------------------------------

TRANSCRIPTS: dict[str, tuple[Callable[[], bytes], str]] = {
    "gzip bomb": (lambda: _gzip_bomb(64 * MiB), "not UTF-8 text"),
    "binary junk": (lambda: bytes(range(256)) * 1000, "not UTF-8 text"),
    "a 40 MB line": (lambda: b'{"dir": "in", "data": "' + b"00" * (20 * MiB) + b'"}\n',
                     "longer than 65536 characters"),
    "40 MB of NUL, no newline": (lambda: b"\0" * (40 * MiB), "longer than 65536 characters"),
    "deeply nested JSON": (lambda: b"[" * 60000 + b"\n", "not a transcript line"),
    "deeply nested data": (lambda: b'{"dir": "in", "data": ' + b"[" * 30000 + b"\n",
                           "not a transcript line"),
    # json.dumps writes 1e999 as Infinity, which is not JSON: refused as the line it is
    "product id 1e999": (lambda: line(dir="meta", product_id=1e999).encode(),
                         "not a transcript line"),
    "product id of 5000 digits": (lambda: b'{"dir": "meta", "product_id": ' + b"9" * 5000
                                  + b"}\n", "not a transcript line"),
    "product id 10**30": (lambda: line(dir="meta", product_id=10**30).encode(),
                          "product_id must be a USB product id"),
    "product id -5": (lambda: line(dir="meta", product_id=-5).encode(), "product_id"),
    "product id 13904.5": (lambda: line(dir="meta", product_id=13904.5).encode(),
                           "product_id"),
    # NaN is not JSON: the line is refused whole (the JSON parser says so, not the check of
    # product_id, since foreign lines are read by msgspec)
    "NaN": (lambda: b'{"dir": "meta", "product_id": NaN}\n', "not a transcript line"),
    "bad hex": (lambda: line(dir="out", data="zz" * 64).encode(), "not a transcript line"),
    "odd hex": (lambda: line(dir="out", data=OUT[:-1]).encode(), "not a transcript line"),
    "non-ASCII digits": (lambda: line(dir="out", data="\u0663" * 128).encode(),
                         "not a transcript line"),
    "a report of 63 bytes": (lambda: line(dir="out", data=OUT[:-2]).encode(),
                             "a report is 64 bytes, not 63"),
    "a report of 10 MB hex in 64 KiB": (lambda: line(dir="in", data="00" * 30000).encode(),
                                        "a report is 64 bytes"),
    "100000 unrelated lines": (lambda: line(dir="note", text="x").encode() * 100_000,
                               "no \"in\" or \"out\" report"),
    "empty": (lambda: b"", "no \"in\" or \"out\" report"),
    "not JSON": (lambda: b"hello\n", "line 1: not a transcript line"),
}
WRONG_VALUES: list[Any] = [None, True, 1, 1.5, "x", [], {}, ["in"], {"in": 1}]
for _field in ("dir", "data"):
    for _value in WRONG_VALUES:
        if _field == "dir" and _value == "x":
            continue  # an unknown direction is skipped on purpose (forward compatible)
        _fields = {"dir": "out", "data": OUT, _field: _value}
        TRANSCRIPTS[f"{_field}={_value!r}"] = ((lambda f=_fields: line(**f).encode()),
                                              "not a transcript")
for _value in WRONG_VALUES[1:]:
    if type(_value) is int:
        continue  # the right type (an unknown id is refused later, by the model lookup)
    TRANSCRIPTS[f"product_id={_value!r}"] = (
        (lambda v=_value: line(dir="meta", product_id=v).encode() + line(dir="out", data=OUT)
         .encode()), "line 1")


@pytest.mark.parametrize("case", sorted(TRANSCRIPTS))
def test_hostile_transcript(tmp_path: Path, case: str) -> None:
    make, says = TRANSCRIPTS[case]
    path = tmp_path / "t.jsonl"
    path.write_bytes(make())
    run = Run(["dump", "--device", f"replay:{path}", "--timeout", "0.2"])
    assert_input_error(run, says, 8 * MiB)


def test_transcript_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("libre_usb.transport.transcript.MAX_TRANSCRIPT_BYTES", 1000)
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(dir="note").encode() * 100)
    assert_input_error(Run(["dump", "--device", f"replay:{path}"]), "too large", MiB)


# -- uploads (diff) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dump") / "dump.json"
    result = CliRunner().invoke(main, ["dump", "--device", "sim:libre?days=10", "-o", str(path)])
    assert result.exit_code == 0, result.stderr
    return path


def _example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(UPLOAD.read_text(encoding="utf-8"))
    return doc


def _har(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                               "entries": entries}}).encode()


def _unrelated(count: int) -> list[dict[str, Any]]:
    return [{"request": {"method": "GET", "url": f"https://example.invalid/{i}", "headers": [],
                         "postData": {"mimeType": "text/plain", "text": "x" * 200}},
             "response": {"status": 200}} for i in range(count)]


#: case: (file maker, what the error says); run with --max-bytes 4 MiB unless in BIG
UPLOADS: dict[str, tuple[Callable[[], bytes], str]] = {
    "gzip bomb (128 MiB)": (lambda: _gzip_bomb(128 * MiB), "compression bomb"),
    "zlib bomb": (lambda: zlib.compress(b" " * (64 * MiB), 9), "compression bomb"),
    "gzip in gzip": (lambda: gzip.compress(gzip.compress(b" " * (64 * MiB), 9), 9),
                     "not JSON"),
    "deeply nested arrays": (lambda: b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    "deeply nested objects": (lambda: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                              "nested too deeply"),
    "a number of 1e999": (lambda: json.dumps({"DeviceData": {"measurementLog": {
        "bloodGlucoseEntries": [{"valueInMgPerDl": 1}]}}}).replace(": 1}", ": 1e999}")
        .encode(), "out of range"),
    "an integer of 100000 digits": (lambda: b'{"DeviceData": ' + b"9" * 100_000 + b"}",
                                    "invalid JSON"),
    "NaN": (lambda: b'{"DeviceData": {"measurementLog": {"bloodGlucoseEntries": '
            b'[{"valueInMgPerDl": NaN}]}}}', "NaN is not valid JSON"),
    "a HAR of 20000 unrelated entries": (lambda: _har(_unrelated(20_000)),
                                         "none of its 20000 entries"),
    "binary junk": (lambda: bytes(range(256)) * 4000, "not an upload"),
    "empty": (lambda: b"", "empty file"),
}


BIG = {"a HAR of 20000 unrelated entries"}  # 7 MB of JSON: run with the default limit


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_hostile_upload(tmp_path: Path, saved_dump: Path, case: str) -> None:
    make, says = UPLOADS[case]
    path = tmp_path / "upload.bin"
    path.write_bytes(make())
    limit = [] if case in BIG else ["--max-bytes", str(4 * MiB)]
    run = Run(["diff", str(path), "--dump", str(saved_dump), *limit])
    # compressed data is inflated incrementally: memory stays near --max-bytes, whatever it
    # expands to; a HAR is JSON, parsed whole: a few times its size, itself within the limit
    bound = 8 * path.stat().st_size if case in BIG else 48 * MiB
    assert_input_error(run, says, bound)


def test_a_har_with_thousands_of_unrelated_entries_finds_the_upload(
        tmp_path: Path, saved_dump: Path) -> None:
    upload = {"request": {"method": "POST", "url": "https://api.example.invalid/measurements",
                          "headers": [{"name": "Content-Type", "value": "application/json"}],
                          "postData": {"mimeType": "application/json",
                                       "text": json.dumps(_example())}},
              "response": {"status": 200}}
    path = tmp_path / "capture.har"
    path.write_bytes(_har([*_unrelated(20_000), upload]))
    run = Run(["diff", str(path), "--dump", str(saved_dump), "-f", "json"])
    assert run.code in (0, 1), run.err
    assert "HAR entry 20000" in json.loads(run.out)["uploads"][0]["label"]
    assert run.peak < 96 * MiB, f"peak {run.peak / MiB:.1f} MiB for a {path.stat().st_size} B file"


def test_a_flow_file_with_thousands_of_unrelated_flows(tmp_path: Path,
                                                         saved_dump: Path) -> None:
    pytest.importorskip("mitmproxy", reason="reading flow files needs the mitm extra")
    from mitmproxy import io as flow_io
    from mitmproxy.test import tflow

    buffer = io.BytesIO()
    writer = flow_io.FlowWriter(buffer)
    for _ in range(2000):
        writer.add(tflow.tflow())
    path = tmp_path / "capture.flows"
    path.write_bytes(buffer.getvalue())
    run = Run(["diff", str(path), "--dump", str(saved_dump)])
    assert_input_error(run, "none of its 2000 flows", 64 * MiB)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value[:1])
                for leaf in _leaves(item, (*path, index))]
    return [(path, value)]


def _wrong(original: Any, index: int) -> Any:
    choices = [value for value in (None, [], {}, "x", True, 1e308, -1, 10**30, [[1]])
               if type(value) is not type(original)]
    return choices[index % len(choices)]


def test_wrong_types_in_every_field_of_an_upload(tmp_path: Path, saved_dump: Path) -> None:
    """Every field of the reference upload, one at a time, replaced by a value of another
    type: the diff runs (fields the loader does not interpret are kept and reported as
    sent) or refuses the file in one line; never a traceback."""
    example = _example()
    codes = set()
    for index, (path, original) in enumerate(_leaves(example)):
        upload = tmp_path / "upload.json"
        upload.write_text(json.dumps(replaced(example, path, _wrong(original, index))))
        result = CliRunner().invoke(main, ["diff", str(upload), "--dump", str(saved_dump)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            path, repr(result.exception))
        assert result.exit_code in (0, 1, 2), (path, result.stderr)
        if result.exit_code == EXIT_INPUT:
            assert result.stderr.count("\n") == 1, result.stderr
        codes.add(result.exit_code)
    assert EXIT_INPUT in codes  # the loader does refuse wrong types where it reads them


def test_wrong_types_in_every_field_of_a_saved_dump(tmp_path: Path, saved_dump: Path) -> None:
    """Every field of a saved dump that the reader of dumps uses, one at a time, replaced
    by a value of another type: a one-line input error."""
    doc = json.loads(saved_dump.read_text(encoding="utf-8"))
    small = {**doc, "records": {kind: items[:1] for kind, items in doc["records"].items()}}
    upload = tmp_path / "upload.json"
    upload.write_text(json.dumps(_example()))
    checked = 0
    for index, (path, original) in enumerate(_leaves(small)):
        if path[0] not in ("format", "version", "timezone", "device", "records"):
            continue  # counts and unit are derived: the reader of dumps ignores them
        if path[0] == "device" and path[1] in ("settings", "sensor") and len(path) > 2:
            continue  # free-form decoded settings, kept as they are
        # values no field of a dump can hold where this one held ``original`` (null and
        # numbers can be right: optional fields, and any number in a number field)
        choices = [v for v in ([], {}, True, "x") if type(v) is not type(original)
                   and not (original is None and v == "x")]
        wrong = choices[index % len(choices)]
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(replaced(small, path, wrong)))
        run = Run(["diff", str(upload), "--dump", str(bad)])
        assert_input_error(run, str(bad), 32 * MiB)
        checked += 1
    assert checked > 50
