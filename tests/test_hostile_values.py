"""Generators of hostile values past the checksum (issue 18): every field of every line
layout of every model, every upload field, every saved-dump field, and informational replies.

A reply can be well-formed (its checksum and trailer right) and its values absurd: empty,
huge, negative, NaN/Inf spellings, thousands of digits, impossible or extreme dates, bytes
that are not UTF-8 (an encoded surrogate), NULs, quotes, lone CR/LF, escape sequences. Each
run must end in a correct dump (every format strict JSON or well-formed CSV that our own
readers read back) or a one-line error with a documented exit code, in bounded time.

The generators sample (seeded ``random``): every (model, command, layout, field) is hit
with a few values from :data:`HOSTILE_FIELDS`, so each test stays within a few seconds. The
figures (runs, failures, worst time) are printed with ``-s`` and quoted in
docs/reliability.md.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from docpaths import paths as doc_paths
from docpaths import replaced

from libre_usb.devices import MODELS
from libre_usb.errors import LibreDumpError
from libre_usb.model import DeviceInfo, Dump, NoteRecord, UnknownRecord
from libre_usb.output import export, timeline
from libre_usb.output.redact import redact
from libre_usb.protocol.text.records import parse_lines
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.upload.diff import diff_uploads
from libre_usb.upload.load import load_bytes
from libre_usb.upload.report import FORMATS as REPORT_FORMATS
from libre_usb.upload.report import render as render_report

#: values put into one field of a checksum-valid line (bytes: a reader sends bytes)
HOSTILE_FIELDS: list[bytes] = [
    b"", b" ", b"-1", b"-0", b"+7", b"0" * 40, b"9" * 11, b"9" * 30, b"9" * 400, b"9" * 5000,
    b"4294967296", b"18446744073709551616", b"1e12", b"1e999", b"NaN", b"nan", b"Infinity",
    b"-inf", b"0x1F", b"\xd9\xa3", b"255", b"99", b"13", b"32", b"0", b"60", b"2147483647",
    b"\x00", b"a\x00b", b'"', b'""', b'"a""b"', b'"unterminated', b"\r", b"\n", b"a\rb",
    b"x\ny", b"\xed\xa0\x80", b"\xff\xfe", b"\x1b]0;owned\x07", b"HI", b"LO", b"Zo\xc3\xab",
    b"5551234567", b"1,2", b"\xe2\x80\xae", b"%s%n", b"x" * 2000,
]
SAMPLES_PER_FIELD = 3
RNG_SEED = 18


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def check_every_format(dump: Dump) -> None:
    """Every dump format is strict JSON / well-formed CSV and reads back with our readers."""
    placed = timeline.place(dump, "UTC")
    for unit in ("mg/dL", "mmol/L"):
        text = export.render(placed, "json", unit=unit)
        doc = strict_json(text)
        again = export.dump_from_document(doc)
        assert len(again.records) == len(placed.records)
        lines = export.render(placed, "ndjson", unit=unit).splitlines()
        for line in lines:
            strict_json(line)
        assert len(export.dump_from_ndjson(lines).records) == len(placed.records)
        table = export.render(placed, "csv", unit=unit)
        rows = list(csv.reader(io.StringIO(table)))
        assert len(rows) == len(placed.records) + 1
        assert {len(row) for row in rows} == {len(rows[0])}
        assert len(export.records_from_csv(table)) == len(placed.records)
    for redacted in (True, False):
        strict_json(export.render_libreview(placed, dt.timezone.utc, redact=redacted))


def record_lines(model: str, command: str) -> list[bytes]:
    reader = VirtualReader(model, 3, days=4)
    message = reader.reply(command)
    assert message is not None
    return message.split(b"\r\n")[:-2]  # the records, without the trailer line


def layouts(lines: list[bytes], command: str) -> list[bytes]:
    """One line per layout: (field count, record type) as the line shows them (the type is
    the first field of a ``$result?`` line, the second of the others)."""
    seen: dict[tuple[int, bytes], bytes] = {}
    for line in lines:
        fields = line.split(b",")
        seen.setdefault((len(fields), fields[0 if command == "$result?" else 1]), line)
    return list(seen.values())


def mutations(line: bytes, rng: random.Random) -> Iterator[tuple[int, bytes, bytes]]:
    fields = line.split(b",")
    for index in range(len(fields)):
        for value in rng.sample(HOSTILE_FIELDS, SAMPLES_PER_FIELD):
            changed = [*fields[:index], value, *fields[index + 1:]]
            yield index, value, b",".join(changed)


SOURCES = sorted({(name, source.command, source.parser)
                  for name, model in MODELS.items() for source in model.records})
FIGURES: dict[str, list[float]] = {}


def _figure(name: str, runs: int, worst: float) -> None:
    FIGURES[name] = [runs, worst]
    print(f"\n[hostile] {name}: {runs} runs, 0 failures, worst {worst * 1000:.0f} ms")


@pytest.mark.parametrize(("model", "command", "parser"), SOURCES)
def test_every_field_of_every_layout_of_every_model(model: str, command: str,
                                                    parser: str) -> None:
    rng = random.Random(f"{RNG_SEED}{model}{command}")
    info = DeviceInfo(model=model, product_id=MODELS[model].product_ids[0], serial="S1",
                      software_version="1", unit="mg/dL",
                      clock=dt.datetime(2026, 6, 15, 12, 0))
    runs, worst = 0, 0.0
    records = []
    for line in layouts(record_lines(model, command), command):
        for index, value, changed in mutations(line, rng):
            start = time.monotonic()
            parsed = parse_lines(parser, [changed], command)
            assert parsed, (index, value)
            check_every_format(Dump(device=info, records=tuple(parsed)))
            worst = max(worst, time.monotonic() - start)
            runs += 1
            records.extend(parsed)
    # all of them in one dump too (time changes interact: placement across all lines)
    check_every_format(Dump(device=info, records=tuple(records)))
    assert worst < 10.0  # bounded (a shared, loaded machine: generous)
    _figure(f"lines {model} {command}", runs, worst)


#: informational commands and hostile replies (checked end to end through a session)
INFO_REPLIES = [b"", b"9" * 5000, b"DB Record Number = " + b"9" * 5000, b"-1,-1,-1",
                b"99,99,99,99,99,99,1,99999999999", b"1e999", b"\x1b]0;x\x07",
                b"T1=1,\xff\nT99999999999999=2,x", b"\xed\xa0\x80", b"255,255,255",
                b"1,2,3\r\n" * 300]


@pytest.mark.parametrize("model", sorted(m for m in MODELS if not MODELS[m].encrypted))
def test_every_informational_reply_of_every_model(model: str) -> None:
    rng = random.Random(f"{RNG_SEED}{model}")
    reader = VirtualReader(model, 1, days=1)
    commands = [c for c in (MODELS[model].serial_command, MODELS[model].version_command,
                            MODELS[model].unit_command, *MODELS[model].info_commands) if c]
    runs, worst = 0, 0.0
    for command in commands:
        for reply in rng.sample(INFO_REPLIES, 3):
            virtual = VirtualReader(model, 1, days=1)
            virtual._handlers[command] = lambda r=reply: r + b"\r\n"
            start = time.monotonic()
            try:
                with Session(SimTransport(virtual), model, timeout_ms=300) as session:
                    dump = session.dump()
            except LibreDumpError:
                continue
            check_every_format(dump)
            worst = max(worst, time.monotonic() - start)
            runs += 1
    assert reader.content.serial
    assert worst < 10.0  # bounded (a shared, loaded machine: generous)
    _figure(f"replies {model}", runs, worst)


# -- uploads and saved dumps ----------------------------------------------------------------

#: JSON values put into an upload or saved-dump field
HOSTILE_JSON: list[Any] = [
    None, True, False, 0, -1, 1e12, 1e300, -1e300, 10 ** 30, 10 ** 400, 0.1, "", " ",
    "\udc80", "a\x00b", "\x1b]0;x\x07", "\r", "\n", "x" * 40_000, "1e999", "NaN",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00",
    "9999-12-31T23:59:59", "2026-06-15T12:00:00+14:00", "2026-13-45T25:61:61",
    "2026-06-15T12:00:00", [], {}, [[[[[[[[[[]]]]]]]]]], {"a": {"b": {"c": [1]}}},
    "someone@example.org", "a@" + "b" * 5000,
]


@pytest.fixture(scope="module")
def reader_and_upload() -> tuple[Dump, dict[str, Any], dict[str, Any]]:
    with Session(SimTransport(VirtualReader("libre", 5, days=2)), "libre",
                 timeout_ms=300) as session:
        dump = timeline.place(session.dump(), "UTC")
    upload = json.loads(export.render_libreview(dump, dt.timezone.utc, redact=False))
    document = strict_json(export.render(dump, "json"))
    return dump, upload, document


def _diff_everything(dump: Dump, body: bytes) -> None:
    try:
        uploads = load_bytes(body, name="upload")
        result = diff_uploads(dump, uploads, tz="UTC")
    except LibreDumpError as exc:
        assert "\n" not in str(exc)
        return
    for fmt in REPORT_FORMATS:
        text = render_report(result, fmt)
        if fmt == "json":
            strict_json(text)
        text.encode("utf-8")  # writable


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # \\u escapes keep lone surrogates as JSON has them


def test_every_upload_field(reader_and_upload: tuple[Dump, dict[str, Any], dict[str, Any]]
                            ) -> None:
    dump, upload, _ = reader_and_upload
    rng = random.Random(RNG_SEED)
    paths = list(doc_paths(upload))
    runs, worst = 0, 0.0
    for path in rng.sample(paths, min(len(paths), 60)):
        for value in rng.sample(HOSTILE_JSON, 3):
            start = time.monotonic()
            _diff_everything(dump, _json_bytes(replaced(upload, path, value)))
            worst = max(worst, time.monotonic() - start)
            runs += 1
    assert worst < 10.0  # bounded (a shared, loaded machine: generous)
    _figure("upload fields", runs, worst)


EXTREME_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                 "0001-01-01T00:00:00", "9999-12-31T23:59:59Z", "0001-01-09T00:00:00+14:00",
                 "2026-02-30T00:00:00Z", "2026-06-15T24:00:00Z", "+2026-06-15T12:00:00Z"]


@pytest.mark.parametrize("key", ["timestamp", "factoryTimestamp"])
def test_every_entry_time_at_the_ends_of_the_calendar(
        reader_and_upload: tuple[Dump, dict[str, Any], dict[str, Any]], key: str) -> None:
    """Times in every entry at once: placed in UTC, in a zone and within a tolerance."""
    dump, upload, _ = reader_and_upload
    for value in EXTREME_TIMES:
        doc = copy.deepcopy(upload)
        for entries in doc["DeviceData"]["measurementLog"].values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and key == "timestamp":
                    entry["timestamp"] = value
                elif isinstance(entry, dict):
                    entry.setdefault("extendedProperties", {})["factoryTimestamp"] = value
        _diff_everything(dump, _json_bytes(doc))
        _diff_everything(timeline.place(dump, "Pacific/Kiritimati"), _json_bytes(doc))


def test_every_saved_dump_field(reader_and_upload: tuple[Dump, dict[str, Any], dict[str, Any]]
                                ) -> None:
    _, upload, document = reader_and_upload
    rng = random.Random(RNG_SEED + 1)
    paths = list(doc_paths(document))
    body = _json_bytes(upload)
    runs, worst = 0, 0.0
    for path in rng.sample(paths, min(len(paths), 40)):
        for value in rng.sample(HOSTILE_JSON, 2):
            start = time.monotonic()
            doc = replaced(document, path, value)
            try:
                dump = export.dump_from_document(
                    strict_json(json.dumps(doc)) if _finite(doc) else doc)
            except LibreDumpError as exc:
                assert "\n" not in str(exc)
                continue
            _diff_everything(dump, body)
            check_every_format(dump)
            worst = max(worst, time.monotonic() - start)
            runs += 1
    assert worst < 10.0  # bounded (a shared, loaded machine: generous)
    _figure("saved-dump fields", runs, worst)


def _finite(doc: Any) -> bool:
    try:
        json.dumps(doc, allow_nan=False)
    except ValueError:
        return False
    return True


# -- redaction: nothing identifying of the unredacted dump survives ------------------------

PHONE = "0049301234567"
#: hostile lines with identifying texts in places a parser may not classify
HOSTILE_ARRESULT: list[Callable[[int], str]] = [
    # an unknown record type with comment texts (fields 29..34 quoted)
    lambda n: f"{n},9,6,14,26,12,0,0,0,0,0,0,0,0,0,0,0,0,0,7,0,0,0,0,0,0,0,0,0,"
              f'"Klaus Dieter","{PHONE}","Berlin Mitte","","","",0',
    # a reading whose comment slot holds only digits
    lambda n: f"{n},2,6,14,26,12,0,0,0,0,0,0,123,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,"
              f'"","{PHONE}","","","",""',
    # a line of an unknown layout (too short) with a name in it
    lambda n: f"{n},2,6,14,Erika Mustermann,{PHONE}",
]


def _identifying(dump: Dump) -> set[str]:
    found = {s for s in (dump.device.serial, dump.device.patient_name, dump.device.patient_id)
             if s}
    for record in dump.records:
        if isinstance(record, NoteRecord) and record.text:
            found.add(record.text)
        values = [v for _, v in record.raw]
        if isinstance(record, UnknownRecord):
            values += list(record.fields[2:])
        found.update(v for v in values if any(c.isalpha() for c in v) or len(v) > 6)
    return {s.strip() for s in found if len(s.strip()) >= 4}


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_redaction_property(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a seeded reader plus hostile lines, no identifying string of the unredacted dump
    appears in any redacted output, in any format, or in any message on stderr."""
    from click.testing import CliRunner

    from libre_usb.cli import main
    from libre_usb.protocol.text.reply import build_multirecord

    real_reply = VirtualReader.reply

    def reply(self: VirtualReader, command: str) -> bytes | None:
        message = real_reply(self, command)
        if command != "$arresult?" or message is None:
            return message
        lines = message.split(b"\r\n")[:-2]
        extra = [make(90000 + i).encode() for i, make in enumerate(HOSTILE_ARRESULT)]
        random.Random(seed).shuffle(extra)
        return build_multirecord([*extra, *lines])

    monkeypatch.setattr(VirtualReader, "reply", reply)
    with Session(SimTransport(VirtualReader("libre", seed, days=3)), "libre",
                 timeout_ms=300) as session:
        plain = timeline.place(session.dump(), "UTC")
    secrets = _identifying(plain)
    assert PHONE in secrets and "Klaus Dieter" in secrets and plain.device.serial in secrets
    redacted = redact(plain)
    outputs = [export.render(redacted, fmt) for fmt in export.WRITERS]
    outputs.append(export.render_libreview(plain, dt.timezone.utc, redact=True))
    # the same through the command line: stdout and stderr (warnings, notes, errors); the
    # faults make the reader's replies broken once, so retry warnings are written too
    runner = CliRunner()
    faults = ("trailer_count", "checksum_once", "drop", "duplicate")
    for index, fmt in enumerate(export.FORMATS):
        fault = faults[(index + seed) % len(faults)]
        result = runner.invoke(main, ["dump", "-d", f"sim:libre?seed={seed}&days=3&"
                                      f"faults={fault}", "--redact", "-f", fmt])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout + result.stderr)
    for text in outputs:
        for secret in secrets:
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            assert secret not in text and escaped not in text, secret
