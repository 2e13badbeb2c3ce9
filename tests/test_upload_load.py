"""Loading captured uploads: raw bodies in every encoding, mitmproxy flow files written by
mitmproxy itself, HAR files made by mitmproxy's own exporter; and hostile or broken input
(compression bombs, truncation, bad JSON, wrong types), each a one-line error with exit 2
through the CLI, with memory bounded by the limit."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.errors import InputError, MissingExtra
from libre_usb.model import Dump
from libre_usb.output import export
from libre_usb.output.libreview import build_upload
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.upload.diff import diff_uploads
from libre_usb.upload.load import Upload, load_file, load_uploads
from libre_usb.upload.report import render

TZ = "Europe/Berlin"
TOKEN = "eyJhbGciOi-the-secret-user-token"
NEWYU = "x-newyu-secret-header-value"
PASSWORD = "hunter2-password"
UPLOAD_URL = "https://api-eu.libreview.io/lsl/api/measurements"


@pytest.fixture(scope="module")
def dump() -> Dump:
    """Ten days of the virtual reader (read through the session)."""
    with Session(SimTransport(VirtualReader("libre", seed=2))) as session:
        full = session.dump()
    clock = full.device.clock
    assert clock is not None
    start = clock - dt.timedelta(days=10)
    records = tuple(r for r in full.records
                    if r.local_time is not None and r.local_time >= start)
    return Dump(device=full.device, records=records)


@pytest.fixture(scope="module")
def upload_doc(dump: Dump) -> dict[str, Any]:
    doc = build_upload(dump, tz=TZ, redact=False)
    doc["UserToken"] = TOKEN
    doc["GatewayType"] = "FSLibreLink.Android"
    return doc


@pytest.fixture(scope="module")
def body(upload_doc: dict[str, Any]) -> bytes:
    return json.dumps(upload_doc).encode()


@pytest.fixture(scope="module")
def dump_file(dump: Dump, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dump") / "dump.json"
    path.write_text(json.dumps(export.dump_document(dump)), encoding="utf-8")
    return path


def entry_key(upload: Upload) -> list[tuple[str, int | None, str | None]]:
    return [(e.list_name, e.record_number, e.timestamp.text if e.timestamp else None)
            for e in upload.entries]


def check_same_as_raw(uploads: list[Upload], body: bytes, dump: Dump) -> Upload:
    """One upload, with exactly the entries of the raw body, matching the reader."""
    assert len(uploads) == 1
    (upload,) = uploads
    raw = load_file_bytes(body)
    assert entry_key(upload) == entry_key(raw)
    result = diff_uploads(dump, uploads)
    assert result.identical, result.counts()
    return upload


_TMP: list[Path] = []


def load_file_bytes(data: bytes) -> Upload:
    path = _TMP[0] / "raw-body.bin"
    path.write_bytes(data)
    (upload,) = load_file(path)
    return upload


@pytest.fixture(autouse=True)
def _tmp(tmp_path: Path) -> None:
    _TMP[:] = [tmp_path]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


# -- raw bodies -----------------------------------------------------------------------------


def _gzip_members(data: bytes) -> bytes:
    half = len(data) // 2
    return gzip.compress(data[:half]) + gzip.compress(data[half:])


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


VARIANTS: dict[str, tuple[Callable[[bytes], bytes], str | None]] = {
    "plain": (lambda b: b, None),
    "bom": (lambda b: b"\xef\xbb\xbf" + b, None),
    "bom-gzip": (lambda b: gzip.compress(b"\xef\xbb\xbf" + b), "gzip"),
    "gzip": (gzip.compress, "gzip"),
    "gzip-two-members": (_gzip_members, "gzip"),
    "zlib": (zlib.compress, "deflate"),
    "raw-deflate": (_raw_deflate, "raw deflate"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_raw_body_in_every_encoding(variant: str, body: bytes, dump: Dump,
                                    tmp_path: Path) -> None:
    encode, encoding = VARIANTS[variant]
    path = tmp_path / "body"  # no extension: chosen by content
    path.write_bytes(encode(body))
    upload = check_same_as_raw(load_file(path), body, dump)
    assert upload.source.container == "body"
    assert upload.source.encoding == encoding
    assert upload.secrets == ("UserToken",)
    assert TOKEN not in json.dumps(upload.data)


def test_body_without_the_envelope(upload_doc: dict[str, Any], body: bytes, dump: Dump,
                                   tmp_path: Path) -> None:
    path = tmp_path / "inner.json"
    path.write_text(json.dumps(upload_doc["DeviceData"]))
    upload = check_same_as_raw(load_file(path), body, dump)
    assert upload.prefix == ""
    assert upload.entries[0].path.startswith("measurementLog.")


def test_cli_diff_of_a_gzip_body_writes_the_report_atomically(body: bytes, dump_file: Path,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "upload.gz"
    path.write_bytes(gzip.compress(body))
    out = tmp_path / "report.json"
    result = run_cli("diff", str(path), "--dump", str(dump_file), "-f", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["format"] == "libre-dump-diff" and report["version"] == 1
    assert report["identical"] is True
    assert report["uploads"][0]["encoding"] == "gzip"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert TOKEN not in out.read_text()


def test_cli_exit_1_when_the_upload_differs(upload_doc: dict[str, Any], dump_file: Path,
                                            tmp_path: Path) -> None:
    doc = json.loads(json.dumps(upload_doc))
    doc["DeviceData"]["measurementLog"]["scheduledContinuousGlucoseEntries"].pop(3)
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(doc))
    result = run_cli("diff", str(path), "--dump", str(dump_file))
    assert result.exit_code == 1
    assert "on the reader, not uploaded (1)" in result.stdout


def test_cli_reads_the_virtual_reader_with_device(body: bytes, tmp_path: Path) -> None:
    """--device goes through Session(open_transport(uri)); a part of the reader's records
    in the upload is a difference (the rest are on the reader, not uploaded)."""
    path = tmp_path / "upload.json"
    path.write_bytes(body)
    result = run_cli("diff", str(path), "--device", "sim:libre?seed=2")
    assert result.exit_code == 1
    assert "on the reader, not uploaded" in result.stdout
    assert "uploaded, not on the reader" not in result.stdout


# -- mitmproxy flow files and HAR ---------------------------------------------------------


def _flows(body: bytes) -> list[Any]:
    """Captured traffic, made with mitmproxy's own classes: the app config GET, the login
    POST (credentials, not an upload), the gzip-compressed upload, a TCP flow."""
    from mitmproxy import http
    from mitmproxy.test import tflow

    config = http.Request.make(
        "GET", "https://fsll.freestyleserver.com/Payloads/Mobile/FSLibreLink/Android/"
               "Config/FSLibreLink_Android_2.10_GB_config.json")
    login = http.Request.make(
        "POST", "https://api-eu.libreview.io/lsl/api/nisperson/getauthentication",
        json.dumps({"UserName": "zoe@example.org", "Password": PASSWORD,
                    "DeviceId": "b76f19a9-d4a0-4d67-8999-56b89b0968ee"}),
        {"content-type": "application/json"})
    upload = http.Request.make("POST", UPLOAD_URL, b"", {
        "content-type": "application/json",
        "content-encoding": "gzip",
        "user-agent": "LibreLink/9122 CFNetwork/3860.400.51 Darwin/25.3.0",
        "abbott-adc-app-platform": "Android/12/FSLL/2.10.1.10406",
        "accept-language": "en-GB, en;q=0.8",
        "x-newyu-token": NEWYU,
    })
    upload.content = body  # mitmproxy compresses it per Content-Encoding
    assert upload.raw_content is not None and upload.raw_content[:2] == b"\x1f\x8b"
    flows: list[Any] = []
    for index, request in enumerate((config, login, upload)):
        request.timestamp_start = 1_780_000_000 + index
        request.timestamp_end = request.timestamp_start + 0.5
        flows.append(tflow.tflow(req=request, resp=True))
    flows.append(tflow.ttcpflow())
    return flows


def _write_flows(path: Path, flows: list[Any]) -> None:
    from mitmproxy.io import FlowWriter

    with open(path, "wb") as handle:
        writer = FlowWriter(handle)
        for flow in flows:
            writer.add(flow)


def _check_capture(upload: Upload, container: str, index: int) -> None:
    source = upload.source
    assert source.container == container
    assert source.index == index
    assert source.url == UPLOAD_URL
    assert source.host == "api-eu.libreview.io"
    assert source.time == dt.datetime.fromtimestamp(1_780_000_002, dt.timezone.utc)
    assert dict(source.headers)["x-newyu-token"] != NEWYU


def _check_private(result_text: list[str]) -> None:
    for text in result_text:
        for secret in (TOKEN, NEWYU, PASSWORD):
            assert secret not in text


def test_mitmproxy_flow_file(body: bytes, dump: Dump, tmp_path: Path) -> None:
    path = tmp_path / "capture"  # what `mitmdump -w capture` writes
    _write_flows(path, _flows(body))
    uploads = load_file(path)
    upload = check_same_as_raw(uploads, body, dump)
    _check_capture(upload, "mitmproxy", 2)
    assert upload.source.encoding == "gzip"
    assert upload.source.server_address == "192.168.0.1:22"
    result = diff_uploads(dump, uploads)
    privacy = {(p.path, p.value) for p in result.privacy}
    assert ("request", "api-eu.libreview.io") in privacy
    assert ("request", "2026-05-28T20:26:42Z") in privacy  # the upload's time
    assert ("request header x-newyu-token", "present") in privacy
    assert ("request header Authorization", "absent") in privacy
    assert ("request header abbott-adc-app-platform", "Android/12/FSLL/2.10.1.10406") in privacy
    assert ("UserToken", None) in privacy
    _check_private([render(result, fmt) for fmt in ("text", "json", "html")])


def test_har_made_by_mitmproxy(body: bytes, dump: Dump, tmp_path: Path) -> None:
    from mitmproxy.addons.savehar import SaveHar

    har = SaveHar().make_har(_flows(body))
    assert har["log"]["version"] == "1.2"
    path = tmp_path / "capture.har"
    path.write_text(json.dumps(har, indent=4))
    upload = check_same_as_raw(load_file(path), body, dump)
    _check_capture(upload, "har", 2)
    # mitmproxy's compressed export (.zhar) is the same HAR, zlib-compressed
    zhar = tmp_path / "capture.zhar"
    zhar.write_bytes(zlib.compress(json.dumps(har).encode(), 9))
    check_same_as_raw(load_file(zhar), body, dump)
    result = diff_uploads(dump, load_file(path))
    _check_private([render(result, fmt) for fmt in ("text", "json", "html")])


def test_har_with_a_base64_gzip_body_and_a_bom(body: bytes, dump: Dump, tmp_path: Path) -> None:
    """Other tools store binary request bodies as base64 (HAR 1.3's postData.encoding)."""
    entry = {
        "startedDateTime": "2026-05-28T20:26:42.000Z",
        "request": {"method": "POST", "url": UPLOAD_URL,
                    "headers": [{"name": "Content-Encoding", "value": "gzip"},
                                {"name": "Authorization", "value": "Bearer " + TOKEN}],
                    "postData": {"mimeType": "application/json", "encoding": "base64",
                                 "text": base64.b64encode(gzip.compress(body)).decode()}},
        "response": {"status": 200},
    }
    unrelated = {"request": {"method": "POST", "url": "https://example.org/form",
                             "postData": {"mimeType": "text/plain", "text": "hello"}}}
    har = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                   "entries": [unrelated, entry, entry]}}
    path = tmp_path / "capture"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(har).encode())
    uploads = load_file(path)
    assert [u.source.index for u in uploads] == [1, 2]
    result = diff_uploads(dump, uploads)
    assert result.identical
    assert result.duplicates == len(uploads[0].entries)  # the second copy merged away
    privacy = {(p.path, p.value) for p in result.privacy}
    assert ("request header Authorization", "present") in privacy
    _check_private([render(result, fmt) for fmt in ("text", "json", "html")])


def test_several_files_give_several_uploads(body: bytes, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(body)
    _write_flows(second, _flows(body))
    uploads = load_uploads([first, second])
    assert [u.source.container for u in uploads] == ["body", "mitmproxy"]


def test_flow_files_need_the_mitm_extra(body: bytes, dump_file: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "capture"
    _write_flows(path, _flows(body))
    monkeypatch.setitem(sys.modules, "mitmproxy.io", None)
    monkeypatch.setitem(sys.modules, "mitmproxy.exceptions", None)
    with pytest.raises(MissingExtra, match=r"pip install 'libre-dump\[mitm\]'"):
        load_file(path)
    result = run_cli("diff", str(path), "--dump", str(dump_file))
    assert result.exit_code == 2
    assert "libre-dump[mitm]" in result.stderr


# -- bad input ------------------------------------------------------------------------------

LIMIT = 1_000_000


def _bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(b'{"DeviceData": "')]
    for _ in range(size >> 20):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(b'"}') + compressor.flush())
    return b"".join(parts)


def _wrong_type(doc: dict[str, Any]) -> bytes:
    doc = json.loads(json.dumps(doc))
    doc["DeviceData"]["measurementLog"]["scheduledContinuousGlucoseEntries"][2][
        "valueInMgPerDl"] = "159"
    return json.dumps(doc).encode()


def _patched(doc: dict[str, Any], key: str, value: int) -> bytes:
    doc = json.loads(json.dumps(doc))
    doc["DeviceData"]["measurementLog"]["scheduledContinuousGlucoseEntries"][1][key] = value
    return json.dumps(doc).encode()


def _bad_bool(doc: dict[str, Any]) -> bytes:
    doc = json.loads(json.dumps(doc))
    doc["DeviceData"]["measurementLog"]["unscheduledContinuousGlucoseEntries"][0][
        "extendedProperties"]["isFirstAfterTimeChange"] = "yes"
    return json.dumps(doc).encode()


def _har_bomb(_: dict[str, Any]) -> bytes:
    entry = {"request": {"method": "POST", "url": UPLOAD_URL,
                         "postData": {"mimeType": "application/json", "encoding": "base64",
                                      "text": base64.b64encode(_bomb(8 << 20)).decode()}}}
    return json.dumps({"log": {"version": "1.2", "entries": [entry]}}).encode()


def _flow_bomb(_: dict[str, Any]) -> bytes:
    from mitmproxy import http
    from mitmproxy.io import FlowWriter
    from mitmproxy.test import tflow

    request = http.Request.make("POST", UPLOAD_URL, b"", {"content-encoding": "gzip"})
    request.raw_content = _bomb(8 << 20)
    handle = io.BytesIO()
    FlowWriter(handle).add(tflow.tflow(req=request))
    return handle.getvalue()


BAD: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "gzip-bomb": (lambda doc: _bomb(8 << 20), "expands past the 1000000-byte limit"),
    "truncated-gzip": (lambda doc: gzip.compress(json.dumps(doc).encode())[:5000],
                       "truncated gzip"),
    "corrupt-gzip": (lambda doc: gzip.compress(b"{}")[:10] + b"\x07" + bytes(20),
                     "corrupt gzip data (Error -3 while decompressing data: invalid block type)"),
    "invalid-json": (lambda doc: b'{"DeviceData": {"measurementLog": {]}}', "invalid JSON"),
    "no-measurement-log": (lambda doc: b'{"DeviceData": {"header": {"device": {}}}}',
                           "no measurementLog"),
    "not-an-object": (lambda doc: b'[1, 2, 3]', "not a JSON object"),
    "wrong-type": (_wrong_type, "valueInMgPerDl: expected a number, got a string"),
    "bad-boolean": (_bad_bool, "isFirstAfterTimeChange: expected a boolean"),
    "huge-integer-value": (lambda doc: _patched(doc, "valueInMgPerDl", 10 ** 400),
                           "valueInMgPerDl: number out of range"),
    "huge-record-number": (lambda doc: _patched(doc, "recordNumber", 1 << 64),
                           "recordNumber: 18446744073709551616... is outside the 64-bit"),
    "too-deep": (lambda doc: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "too-deep-for-the-limit": (lambda doc: b"[" * 100 + b"]" * 100, "nested too deeply"),
    "not-utf8": (lambda doc: b'{"DeviceData": "\xff\xfe"}', "not UTF-8"),
    "nan": (lambda doc: b'{"measurementLog": {"x": NaN}}', "invalid JSON"),
    "empty": (lambda doc: b"", "empty file"),
    "not-an-upload": (lambda doc: b"\x89PNG\r\n\x1a\n" + bytes(100), "not an upload"),
    "har-without-upload": (lambda doc: b'{"log": {"version": "1.2", "entries": []}}',
                           "no upload in this HAR file"),
    "har-bomb": (_har_bomb, "expands past the 1000000-byte limit"),
    "flow-bomb": (_flow_bomb, "(flow 0): the gzip data expands past"),
    "broken-flow-file": (lambda doc: b"12:not a flow,", "not a readable mitmproxy flow file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case: str, upload_doc: dict[str, Any],
                                          dump_file: Path, tmp_path: Path) -> None:
    make, message = BAD[case]
    path = tmp_path / "upload"
    path.write_bytes(make(upload_doc))
    out = tmp_path / "report.html"
    result = run_cli("diff", str(path), "--dump", str(dump_file), "--max-bytes", str(LIMIT),
                     "-f", "html", "-o", str(out))
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"libre-dump: error: {path}")
    assert message in lines[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_missing_file_and_bad_options(dump_file: Path, tmp_path: Path) -> None:
    result = run_cli("diff", str(tmp_path / "nope.json"), "--dump", str(dump_file))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "nope.json" in result.stderr
    path = tmp_path / "u.json"
    path.write_text("{}")
    result = run_cli("diff", str(path), "--dump", str(dump_file), "--device", "sim:libre")
    assert result.exit_code == 2
    result = run_cli("diff", str(path), "--dump", str(dump_file), "--tz", "Mars/Olympus")
    assert result.exit_code == 2 and "unknown time zone" in result.stderr


def test_memory_stays_bounded_by_the_limit(tmp_path: Path) -> None:
    """A 64 KiB gzip file that would expand to 64 MiB: with a 1 MB limit the loader stops
    early, and never holds much more than the limit."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(_bomb(64 << 20))
    assert path.stat().st_size < 128 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="expands past"):
            load_file(path, max_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT, peak


def test_plain_files_over_the_limit_are_refused_before_reading(body: bytes,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(body)
    with pytest.raises(InputError, match="over the 1000-byte limit"):
        load_file(path, max_bytes=1000)
