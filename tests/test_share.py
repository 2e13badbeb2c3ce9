"""Shareable transcripts (``dump --record FILE --redact``, issue 17).

For every virtual reader model and several seeds: the shareable transcript holds none of
the identifying strings of the unredacted dump, every text reply in it verifies (``CKSM:``
and multi-record trailer), and ``replay:`` of it gives the same dump as the session it was
recorded from, with placeholders of the same length and class for the replaced texts.
The pure rewriting (protocol/text/rewrite.py) is checked on its own below.
"""

from __future__ import annotations

import csv
import getpass
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from libre_usb import __version__
from libre_usb.cli import main
from libre_usb.devices import MODELS
from libre_usb.errors import ChecksumError
from libre_usb.output.redact import is_text
from libre_usb.protocol.frames import TEXT_COMMAND_TYPES, MessageType
from libre_usb.protocol.text.records import split_line
from libre_usb.protocol.text.reply import (
    TextReplyAssembler,
    build_multirecord,
    build_text_reply,
    parse_multirecord,
)
from libre_usb.protocol.text.rewrite import field_spans, mask, mask_fields, mask_text, rewrite_reply

SEEDS = (2, 11, 29)
SIM = "sim:{model}?seed={seed}&days=4"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def _needs_keys(model: str) -> None:
    if MODELS[model].encrypted:
        pytest.importorskip("freestyle_keys", reason="the virtual Libre 2/3 needs freestyle-keys")


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _exchanges(items: list[dict[str, Any]]) -> list[tuple[str | None, list[bytes]]]:
    """(text command, payloads of the 0x60 reports that followed it) of a transcript."""
    out: list[tuple[str | None, list[bytes]]] = [(None, [])]
    for item in items:
        if item["dir"] not in ("in", "out"):
            continue
        report = bytes.fromhex(item["data"])
        payload = report[2 : 2 + report[1]]
        if item["dir"] == "out":
            command = payload.rstrip(b"\r\n").decode() if report[0] in TEXT_COMMAND_TYPES else None
            out.append((command, []))
        elif report[0] == MessageType.TEXT:
            out[-1][1].append(payload)
    return [(command, payloads) for command, payloads in out if payloads]


def _secrets(dump: dict[str, Any]) -> set[str]:
    """The identifying strings of an unredacted dump: serial, patient name and id, the
    identifying replies, every note, tag and reminder-label text, every text in a raw or
    unknown field."""
    device = dump["device"]
    found = {device.get("serial"), device.get("patient_name"), device.get("patient_id")}
    replies = device.get("replies", {})
    found |= {replies.get(c) for c in ("$sn?", "$serlnum?", "$ptname?", "$ptid?")}
    found |= {tag.get("text") for tag in device.get("settings", {}).get("tags", [])}
    for label in replies.get("$getrmndrst,0", "").split("\n"):
        found.add(label.partition(",")[2] or label)
    for group in dump["records"].values():
        for record in group:
            found.add(record.get("text"))
            found |= {value for _, value in record.get("raw", [])}
            found |= set(record.get("fields", []))
    return {s for s in found if isinstance(s, str) and len(s.strip()) >= 3 and is_text(s)}


def _record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["kind"], record["source"], record["record_id"], record.get("comment_index"),
            record.get("insulin_type"))


def _assert_same_but_texts(plain: Any, replayed: Any, encoding: str, where: str) -> None:
    """``replayed`` equals ``plain`` except that a text may be its placeholder."""
    if isinstance(plain, str) and isinstance(replayed, str) and plain != replayed:
        assert _masked_from(plain, replayed, encoding), (where, plain, replayed)
        return
    if isinstance(plain, dict):
        assert isinstance(replayed, dict) and plain.keys() == replayed.keys(), where
        for key in plain:
            _assert_same_but_texts(plain[key], replayed[key], encoding, f"{where}.{key}")
        return
    if isinstance(plain, list):
        assert isinstance(replayed, list) and len(plain) == len(replayed), where
        for i, (a, b) in enumerate(zip(plain, replayed, strict=True)):
            _assert_same_but_texts(a, b, encoding, f"{where}[{i}]")
        return
    assert plain == replayed, (where, plain, replayed)


def _masked_from(plain: str, replayed: str, encoding: str) -> bool:
    """Each character of ``plain`` is in ``replayed`` as it is or as its placeholder."""
    at = 0
    for char in plain:
        placeholder = mask_text(char, encoding)
        if replayed.startswith(char, at):
            at += len(char)
        elif replayed.startswith(placeholder, at):
            at += len(placeholder)
        else:
            return False
    return at == len(replayed)


#: what a dump decodes and a shareable transcript must keep exactly
DECODED = ("kind", "source", "record_id", "record_type", "local_time", "utc", "time_status",
           "glucose_mg_dl", "ketone_mmol_l", "value_raw", "out_of_range", "trend", "units",
           "insulin_type", "carbs_g", "comment_index", "old_time", "new_time",
           "sensor_runtime_min", "errors", "error_flag", "first_after_insertion")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_shareable_transcript_hides_verifies_and_replays(tmp_path: Path, model: str,
                                                         seed: int) -> None:
    _needs_keys(model)
    device = SIM.format(model=model, seed=seed)
    plain_json, shared = tmp_path / "plain.json", tmp_path / "shared.jsonl"
    # shareable transcripts are made of text-protocol sessions (the Libre Pro defaults to
    # the binary protocol): every run reads with --protocol text
    text = ("--protocol", "text")
    _cli("dump", "-d", device, "-o", str(plain_json), "--tz", "UTC", "-q", *text)
    _cli("dump", "-d", device, "--redact", "--record", str(shared), "-o",
         str(tmp_path / "redacted.json"), "--tz", "UTC", "-q")
    replayed_json = tmp_path / "replayed.json"
    _cli("dump", "-d", f"replay:{shared}", "-o", str(replayed_json), "--tz", "UTC", "-q",
         *text)
    plain = json.loads(plain_json.read_text(encoding="utf-8"))
    replayed = json.loads(replayed_json.read_text(encoding="utf-8"))
    items = _read(shared)
    text = shared.read_text(encoding="utf-8")

    # the header: what it is, no host data
    header = items[0]
    assert header["dir"] == "meta" and header["format"] == "libre-dump shareable transcript"
    assert header["tool"] == f"libre-dump {__version__}" and header["model"] == model
    assert header["product_id"] == plain["device"]["product_id"]
    assert header["software_version"] == plain["device"]["software_version"]
    assert header["decrypted"] is MODELS[model].encrypted
    assert header["replaced"]["reader serial"] >= 1 and header["replaced"]["patient name"] == 1
    assert "record lines replaced whole" not in header["replaced"]
    assert "device" not in header and "sim:" not in text and str(tmp_path) not in text
    for host in (getpass.getuser(), socket.gethostname()):
        assert f'"{host}"' not in text

    # (a) none of the identifying strings of the unredacted dump, in any encoding
    stream = b"".join(b"".join(payloads) for _, payloads in _exchanges(items))
    secrets = _secrets(plain)
    assert plain["device"]["serial"] in secrets and plain["device"]["patient_name"] in secrets
    for secret in secrets:
        for encoding in ("utf-8", "latin-1"):
            try:
                data = secret.encode(encoding)
            except UnicodeEncodeError:
                continue
            assert data not in stream, f"{secret!r} is in the transcript"
        assert secret not in text and json.dumps(secret)[1:-1] not in text
    # every report's padding is zero
    for item in items[1:]:
        if item["dir"] in ("in", "out"):
            report = bytes.fromhex(item["data"])
            assert not any(report[2 + min(report[1], 62):]), item

    # (b) every text reply verifies, and every multi-record trailer
    multi = {source.command for source in MODELS[model].records}
    replies = 0
    for command, payloads in _exchanges(items):
        assembler = TextReplyAssembler()
        reply = None
        for payload in payloads:
            reply = assembler.feed(payload)
        assert reply is not None and not reply.trailing, command
        if command in multi:
            parse_multirecord(reply)
        replies += 1
    assert replies >= 2 + len(multi)

    # (c) the same dump, texts replaced by placeholders of the same length and class
    encoding = MODELS[model].text_encoding
    assert plain["counts"] == replayed["counts"]
    for group, records in plain["records"].items():
        again = replayed["records"][group]
        assert [_record_key(r) for r in records] == [_record_key(r) for r in again]
        for a, b in zip(records, again, strict=True):
            assert {k: a.get(k) for k in DECODED} == {k: b.get(k) for k in DECODED}
            _assert_same_but_texts(a, b, "utf-8", f"{group}:{a['record_id']}")
    device_a, device_b = plain["device"], replayed["device"]
    for device_ in (device_a, device_b):  # its trailer's checksum is computed again
        if "$patch?" in device_["replies"]:
            device_["replies"]["$patch?"] = device_["replies"]["$patch?"].rsplit("\n", 1)[0]
    _assert_same_but_texts(device_a, device_b, encoding, "device")
    assert device_b["serial"] == mask_text(device_a["serial"], encoding)
    assert device_b["patient_id"] == mask_text(device_a["patient_id"], encoding)
    for key in ("model", "product_id", "software_version", "unit", "clock", "record_count"):
        assert device_a[key] == device_b[key], key
    assert plain["device"].get("settings", {}).get("reminders") == replayed["device"].get(
        "settings", {}).get("reminders")


@pytest.mark.parametrize("fault", ["checksum_once", "trailer_count", "duplicate",
                                   "stale_padding", "drop"])
def test_a_faulty_session_replays_the_same_from_its_shareable_transcript(
        tmp_path: Path, fault: str) -> None:
    """Retries and leftovers replay as they happened: a broken reply stays broken (masked
    whole, its checksum still wrong), a correct retry verifies."""
    device = f"sim:libre?seed=5&days=3&faults={fault}"
    plain_json, shared = tmp_path / "plain.json", tmp_path / "shared.jsonl"
    runner = CliRunner()
    first = runner.invoke(main, ["dump", "-d", device, "-o", str(plain_json), "--tz", "UTC",
                                 "-q", "--redact", "--record", str(shared)])
    second = runner.invoke(main, ["dump", "-d", f"replay:{shared}", "-o",
                                  str(tmp_path / "again.json"), "--tz", "UTC", "-q"])
    assert (first.exit_code, second.exit_code) == (first.exit_code, first.exit_code)
    if first.exit_code == 0:
        a = json.loads(plain_json.read_text(encoding="utf-8"))
        b = json.loads((tmp_path / "again.json").read_text(encoding="utf-8"))
        assert a["counts"] == b["counts"]
        for group, records in a["records"].items():
            assert [{k: r.get(k) for k in DECODED} for r in records] == [
                {k: r.get(k) for k in DECODED} for r in b["records"][group]]
    else:
        assert first.stderr.splitlines()[-1].split(":")[0] == (
            second.stderr.splitlines()[-1].split(":")[0])
    assert "Traceback" not in first.stderr + second.stderr


def test_info_with_redact_and_record_writes_a_shareable_transcript(tmp_path: Path) -> None:
    shared = tmp_path / "info.jsonl"
    out = _cli("info", "-d", "sim:neo?seed=4", "--redact", "--record", str(shared), "--json")
    assert json.loads(out)["serial"] == "REDACTED-reader-serial"
    assert _read(shared)[0]["format"] == "libre-dump shareable transcript"
    again = json.loads(_cli("info", "-d", f"replay:{shared}", "--json"))
    assert again["serial"] == mask_text(json.loads(_cli("info", "-d", "sim:neo?seed=4",
                                                        "--json"))["serial"])


# -- the pure rewriting -------------------------------------------------------------------------


def test_mask_keeps_length_class_and_separators() -> None:
    assert mask(b'Jo, "Li"\r\n+33 6-12') == b'Xx, "Xx"\r\n+## #-##'
    assert mask("Zoë".encode()) == b"Xx~~" and mask_text("Zoë") == "Xx~~"
    assert mask_text("Zoë", "latin-1") == "Xx~"
    assert mask(b"XXXX###-x") == b"XXXX###-x"  # a placeholder is its own placeholder


@pytest.mark.parametrize("line", [
    b"1,2,3", b'1,"a,b",3', b'1,"say ""hi"", ok",x', b'a"b,c', b',,', b'"",1',
    b'1,"x"y,2', b'1,"line\r\nbreak",2', b'1,lone\rcr,"q"', "1,\"Ünï, cødé\",2".encode(),
])
def test_field_spans_split_as_the_parser_does(line: bytes) -> None:
    spans = field_spans(line)
    fields = split_line(line)
    assert len(spans) == len(fields)
    for (start, end), value in zip(spans, fields, strict=True):
        raw = line[start:end].decode("utf-8", errors="replace")
        hidden = raw.replace("\r", "\ue000").replace("\n", "\ue001")
        unquoted = (next(csv.reader([hidden])) or [""])[0].replace("\ue000", "\r").replace(
            "\ue001", "\n")
        assert value in (raw, unquoted), (raw, value)
    masked = mask_fields(line, set(range(len(fields))))
    assert len(split_line(masked)) == len(fields)


def _payloads(stream: bytes, size: int = 17) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def test_rewrite_reply_recomputes_checksum_and_trailer() -> None:
    records = [b"1,0,Secret,12", b'2,0,"Other, text",13']
    stream = build_text_reply(build_multirecord(records))
    payloads = _payloads(stream)
    result = rewrite_reply(payloads, lambda lines: tuple(mask_fields(x, {2}) for x in lines),
                           multirecord=True)
    assert result.how == "rewritten"
    assert [len(p) for p in result.payloads] == [len(p) for p in payloads]
    new = b"".join(result.payloads)
    assert b"Secret" not in new and b"Other" not in new
    assembler = TextReplyAssembler()
    reply = None
    for payload in result.payloads:
        reply = assembler.feed(payload)
    assert reply is not None
    multi = parse_multirecord(reply)
    assert multi.records == (b"1,0,Xxxxxx,12", b'2,0,"Xxxxx, xxxx",13')


def test_rewrite_reply_masks_a_broken_reply_whole_and_keeps_it_broken() -> None:
    stream = build_text_reply(b"Patient Name\r\n")
    broken = stream.replace(b"CKSM:", b"CKSM:").replace(b"Patient", b"Patiant")
    result = rewrite_reply(_payloads(broken), lambda lines: lines)
    new = b"".join(result.payloads)
    assert result.how == "masked" and b"Pati" not in new and b"CKSM:FFFFFFFF\r\n" in new
    assert b"%08X" % sum(b"Patient Name\r\n") not in new  # the reader's sum is not kept
    assembler = TextReplyAssembler()
    with pytest.raises(ChecksumError):
        for payload in result.payloads:
            assembler.feed(payload)


def test_rewrite_reply_keeps_a_wrong_trailer_wrong() -> None:
    body = b"1,0,Secret,12\r\n"
    message = body + b"1,00000000\r\n"
    result = rewrite_reply(_payloads(build_text_reply(message)), lambda lines: lines,
                           multirecord=True)
    new = b"".join(result.payloads)
    assert result.how == "masked-records" and b"Secret" not in new
    assembler = TextReplyAssembler()
    reply = None
    for payload in result.payloads:
        reply = assembler.feed(payload)
    assert reply is not None and reply.lines[-1] == b"1,FFFFFFFF"


def test_rewrite_reply_masks_bytes_after_the_status_line() -> None:
    stream = build_text_reply(b"ok\r\n") + b"Leftover name"
    result = rewrite_reply([stream], lambda lines: lines)
    assert result.how == "rewritten" and b"Leftover" not in result.payloads[0]


def test_a_plain_transcript_of_a_clear_reader_becomes_shareable_by_replaying_it(
        tmp_path: Path) -> None:
    """Someone who already recorded a plain transcript need not read the reader again:
    replaying it with ``--record --redact`` writes the shareable one (clear readers; a
    Libre 2/3 plain transcript cannot be replayed, its session keys are gone)."""
    plain, shared = tmp_path / "plain.jsonl", tmp_path / "shared.jsonl"
    # (a shareable transcript is made of a text-protocol session; the Libre Pro reads with
    # the binary protocol unless told otherwise, and a replay reads the way it was recorded)
    first = _cli("dump", "-d", "sim:libre_pro?seed=8&days=3", "--record", str(plain), "-q",
                 "--tz", "UTC", "--protocol", "text")
    _cli("dump", "-d", f"replay:{plain}", "--record", str(shared), "--redact", "-q",
         "--tz", "UTC")
    again = _cli("dump", "-d", f"replay:{shared}", "-q", "--tz", "UTC")
    a, b = json.loads(first), json.loads(again)
    assert _read(shared)[0]["format"] == "libre-dump shareable transcript"
    assert a["device"]["serial"] not in shared.read_text(encoding="utf-8")
    for group, records in a["records"].items():
        assert [{k: r.get(k) for k in DECODED} for r in records] == [
            {k: r.get(k) for k in DECODED} for r in b["records"][group]]
