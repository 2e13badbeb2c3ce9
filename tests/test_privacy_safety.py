"""Privacy and safety properties of the whole command line.

- No command opens a network socket: the CLI matrix (list, info, dump in every format,
  schema, diff, doctor, udev) runs with socket creation made to fail, and must not try.
- ``--redact`` leaves none of the serial, patient name and id, note or tag texts of a
  seeded reader in any output format.
- Nothing but read-only commands reaches the reader: every command every virtual reader
  received across the matrix is checked, and the source tree is checked never to build an
  erase command or to allow a write outside the explicit clock setter.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from captures import UPLOAD_EXAMPLE, need
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from libre_usb.cli import main
from libre_usb.cli.device_cmds import dump as dump_command
from libre_usb.devices import FORBIDDEN, MODELS, is_read_only
from libre_usb.protocol.binary.wire import READ_OPS
from libre_usb.protocol.frames import MessageType
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport

ROOT = Path(__file__).resolve().parent.parent
UPLOAD = need(UPLOAD_EXAMPLE)
SIM = "sim:{model}?seed=11&days=10"
DUMP_FORMATS = sorted(next(p for p in dump_command.params if p.name == "fmt").type.choices)
#: the host->device message types of a read: pre-init, serial, version, init, text
#: commands, the Libre 2/3 handshake and the binary-protocol acknowledgement
READ_TYPES = {MessageType.PRE_INIT, MessageType.QUERY_SERIAL, MessageType.QUERY_VERSION,
              MessageType.INIT, MessageType.TEXT, MessageType.TEXT_COMMAND_ABBOTT,
              MessageType.TEXT_COMMAND_ABBOTT_ALT, MessageType.AUTH_REQUEST}
#: the binary protocol's host reports: frames (their ops are checked apart) and ACKs
BINARY_TYPES = {MessageType.BINARY_REQUEST, MessageType.BINARY_ACK_HOST}


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every way of opening a socket fail, and record the attempts."""
    attempts: list[str] = []

    def refuse(name: str) -> Any:
        def blocked(*args: object, **kwargs: object) -> Any:
            attempts.append(f"{name}{args!r}")
            raise NetworkUsed(f"libre-dump tried to use the network: {name}{args!r}")
        return blocked

    class BlockedSocket(socket.socket):
        def __init__(self, *args: object, **kwargs: object) -> None:
            refuse("socket.socket")(*args)

    monkeypatch.setattr(socket, "socket", BlockedSocket)
    for name in ("create_connection", "create_server", "getaddrinfo", "socketpair"):
        monkeypatch.setattr(socket, name, refuse(f"socket.{name}"))
    yield attempts


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> list[VirtualReader]:
    """Every virtual reader the commands open, to look at what they received."""
    opened: list[VirtualReader] = []
    original = SimTransport.__init__

    def init(self: SimTransport, reader: VirtualReader) -> None:
        opened.append(reader)
        original(self, reader)

    monkeypatch.setattr(SimTransport, "__init__", init)
    return opened


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.exception)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def _matrix(tmp_path: Path) -> Iterator[tuple[tuple[str, ...], set[int]]]:
    """(arguments, acceptable exit codes) of every command a user runs."""
    yield ("list",), {0}
    yield ("list", "--json"), {0}
    yield ("schema",), {0}
    yield ("doctor",), {0, 3}
    yield ("doctor", "--json"), {0, 3}
    yield ("udev", "show"), {0}
    yield ("udev", "check"), {0, 3}
    for model in sorted(MODELS):
        device = SIM.format(model=model)
        yield ("info", "--device", device), {0}
        yield ("info", "--device", device, "--json"), {0}
        for fmt in DUMP_FORMATS:
            yield ("dump", "--device", device, "-f", fmt), {0}
    saved = tmp_path / "saved.json"
    yield ("dump", "--device", SIM.format(model="libre"), "-o", str(saved),
           "--record", str(tmp_path / "t.jsonl")), {0}
    yield ("dump", "--device", f"replay:{tmp_path / 't.jsonl'}", "--model", "libre"), {0}
    for fmt in ("text", "json", "html"):
        yield ("diff", str(UPLOAD), "--dump", str(saved), "-f", fmt), {0, 1}
    yield ("diff", str(UPLOAD), "--device", SIM.format(model="libre")), {0, 1}


def test_no_command_opens_a_socket_or_sends_anything_but_reads(
        tmp_path: Path, no_network: list[str], readers: list[VirtualReader]) -> None:
    if any(MODELS[m].encrypted for m in MODELS):
        pytest.importorskip("freestyle_keys", reason="the virtual Libre 2/3 needs freestyle-keys")
    ran = 0
    for args, codes in _matrix(tmp_path):
        code, _, err = cli(*args)
        assert code in codes, (args, code, err)
        ran += 1
    assert no_network == []
    assert ran > 20 and len(readers) >= len(MODELS) * (2 + len(DUMP_FORMATS))
    # every command every reader received only reads
    for reader in readers:
        for command in reader.commands:
            assert is_read_only(command), f"{reader.model.name} received {command!r}"
        for report in reader.received:
            if reader.link is None:  # clear models: every report's type is a read
                assert report[0] in READ_TYPES | BINARY_TYPES, (
                    f"{reader.model.name} received {report.hex()}")
        # binary frames and ACKs carry only read ops (the link decodes them)
        assert {op for op, _ in reader.binary_commands} <= READ_OPS, reader.model.name


def test_blocking_the_network_is_noticed() -> None:
    """The guard itself works (a test of the test): opening a socket under it fails."""
    with pytest.MonkeyPatch.context() as patch:
        attempts: list[str] = []

        def blocked(*args: object, **kwargs: object) -> None:
            attempts.append("create_connection")
            raise NetworkUsed("blocked")

        patch.setattr(socket, "create_connection", blocked)
        with pytest.raises(NetworkUsed):
            socket.create_connection(("127.0.0.1", 9))
    assert attempts == ["create_connection"]


# -- --redact -----------------------------------------------------------------------------


def _secrets(model: str) -> set[str]:
    content = VirtualReader(model, seed=11, days=10).content
    found = {content.serial, content.patient_name, content.patient_id}
    found |= {text for text in content.comments if len(text) >= 3}
    found |= {text for _, _, text in getattr(content, "tags", ()) if len(text) >= 3}
    return found


def _forms(secret: str) -> set[str]:
    """The ways a text can appear in an output: as is, JSON-escaped, CSV-quoted."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            secret.replace('"', '""')}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_redact_leaves_no_identifier_or_free_text_in_any_format(model: str) -> None:
    if MODELS[model].encrypted:
        pytest.importorskip("freestyle_keys", reason="the virtual Libre 2/3 needs freestyle-keys")
    secrets = _secrets(model)
    device = SIM.format(model=model)
    outputs: dict[str, str] = {}
    for fmt in DUMP_FORMATS:
        code, out, err = cli("dump", "--device", device, "-f", fmt, "--redact")
        assert code == 0, err
        outputs[f"dump -f {fmt}"] = out
    for extra in ((), ("--json",)):
        code, out, err = cli("info", "--device", device, "--redact", *extra)
        assert code == 0, err
        outputs[f"info {' '.join(extra)}"] = out
    # every secret is really there without --redact (the test would prove nothing otherwise)
    plain = cli("dump", "--device", device)[1] + cli("info", "--device", device, "--json")[1]
    for secret in secrets:
        assert any(form in plain for form in _forms(secret)), f"{secret!r} is never shown"
    for name, text in outputs.items():
        for secret in secrets:
            for form in _forms(secret):
                assert form not in text, f"{name} shows {secret!r}"


# -- the source never builds an erase or write command ------------------------------------


def _sources() -> list[Path]:
    return sorted((ROOT / "libre_usb").rglob("*.py"))


def test_no_source_file_builds_an_erase_command() -> None:
    pattern = re.compile("|".join(re.escape(token) for token in FORBIDDEN), re.IGNORECASE)
    offenders = []
    for path in _sources():
        if path.name == "devices.py" and path.parent.name == "libre_usb":
            continue  # the deny-list itself
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_nothing_allows_a_write_but_the_explicit_clock_command() -> None:
    """``Session.command(..., allow_write=True)`` (text) and a binary link's
    ``allow_clock = True`` (SET_DATE_TIME) are the only doors to a write: each is opened only
    inside a ``set_clock``; ``set_clock`` is called only by the ``clock`` command module and
    by ``Session.set_clock`` handing over to the binary one."""
    call = re.compile(r"allow_(write|clock)\s*=\s*True")
    openers, setters = [], []
    for path in _sources():
        function = ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("def "):
                function = line.split("def ", 1)[1].split("(", 1)[0]
            where = f"{path.relative_to(ROOT)}:{number}"
            if call.search(line) and "``" not in line:  # code, not a docstring mention
                openers.append((where, function))
            if ".set_clock(" in line:
                setters.append((where, function))
    assert openers and all(function == "set_clock" for _, function in openers), openers
    assert {w.split(":")[0] for w, _ in openers} == {"libre_usb/reader/session.py",
                                                    "libre_usb/reader/binary.py"}, openers
    assert setters and all("clock_cmd" in where or (
        where.startswith("libre_usb/reader/session.py") and function == "set_clock")
        for where, function in setters), setters


def test_every_command_a_model_sends_is_read_only() -> None:
    for model in MODELS.values():
        commands = [model.serial_command, model.version_command, *model.info_commands,
                    *(source.command for source in model.records)]
        if model.unit_command:
            commands.append(model.unit_command)
        for command in commands:
            assert is_read_only(command), f"{model.name}: {command}"
    for token in FORBIDDEN:
        assert not is_read_only(token) and not is_read_only(token.upper())


@pytest.mark.parametrize("command", ["dump", "info"])
def test_redact_with_record_writes_a_shareable_transcript(tmp_path: Path, command: str) -> None:
    """A plain transcript holds every report as sent (the serial, names, notes); with
    --redact the recorder writes the shareable transcript instead (issue 17)."""
    transcript = tmp_path / "t.jsonl"
    code, _, err = cli(command, "--device", SIM.format(model="libre"), "--redact",
                         "--record", str(transcript))
    assert code == 0, err
    header = json.loads(transcript.read_text(encoding="utf-8").splitlines()[0])
    assert header["format"] == "libre-dump shareable transcript"
    text = _shared_text(transcript)
    for secret in _secrets("libre"):
        assert not any(form in text for form in _forms(secret)), secret


# -- hostile lines: the shareable transcript ---------------------------------------------------

#: texts a user (or a broken reader) can put where a note, a name or an unknown field goes:
#: digits only (a phone number as a note), separators and quotes, line breaks, framing words
HOSTILE = ("0612345678", 'Dr "House", 5th', "Quokka\nbreakfast", "CKSM:0000ABCD",
           "Jane Doe-Smith", "jane@example.org", "+33 6 12 34 56 78", "Ünïcødé näme",
           "REDACTED-note-1 Bob")


def _hostile_lines(model: str) -> list[bytes]:
    """Reader lines of the model's record command carrying the hostile texts: a line of
    a known layout with every comment set to them (Libre), a line of an unknown record
    type, a line too short for its layout, and a line with a text in a numeric field."""
    quoted = [json.dumps(text, ensure_ascii=False).replace('\\"', '""').replace(
        "\\n", "\n") for text in HOSTILE]
    if MODELS[model].records[-1].command == "$result?":
        return [",".join(["99", "9001", "6", "1", "26", "10", "0", *quoted]).encode(),
                ",".join(["7", "9002", "6", "1", "26", "10", "0", "95", HOSTILE[4]]).encode(),
                ",".join(["0", "9003", "6", "1", "26", "10", "0", HOSTILE[5], *["0"] * 7,
                          "120", "0", "0"]).encode()]
    reading = ["9001", "2", "6", "1", "26", "10", "0", "0", "1", "2", "0", "0", "120", "0",
               "3", "0", "0", "0", "0", "63", "0", "0", "0", "0", "0", "0", "0", "0", "0",
               *quoted[:6]]
    return [",".join(reading).encode(),
            ",".join(["9002", "77", "6", "1", "26", "10", "0", "0", *quoted]).encode(),
            ",".join(["9003", "2", "6", "1", "26", "10", "0", "0", HOSTILE[4]]).encode(),
            ",".join(["9004", "2", "6", "1", "26", "10", "0", "0", HOSTILE[5], *reading[9:]]
                     ).encode()]


@pytest.fixture
def hostile_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every virtual reader answers its last record command with its records plus the
    hostile lines, and its patient name and id with hostile texts."""
    from libre_usb.protocol.text.reply import build_multirecord

    original = VirtualReader.reply

    def reply(self: VirtualReader, command: str) -> bytes | None:
        message = original(self, command)
        if message is None:
            return None
        if command == self.model.records[-1].command:
            lines = [] if message.startswith(b"Log Empty") else message.split(b"\r\n")[:-2]
            return build_multirecord([*lines, *_hostile_lines(self.model.name)])
        if command == "$ptname?":
            return HOSTILE[1].encode(self.model.text_encoding) + b"\r\n"
        if command == "$ptid?":
            return HOSTILE[0].encode() + b"\r\n"
        return message

    monkeypatch.setattr(VirtualReader, "reply", reply)


def _shared_text(path: Path) -> str:
    """A transcript as text a secret could show in: its JSON, and the payload bytes of its
    reports joined in order (a text can straddle reports), as UTF-8 and as Latin-1."""
    stream = b""
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("dir") in ("in", "out"):
            report = bytes.fromhex(item["data"])
            stream += report[2 : 2 + min(report[1], 62)]
    return "\n".join((path.read_text(encoding="utf-8"), stream.decode("utf-8", "replace"),
                      stream.decode("latin-1")))


@pytest.mark.parametrize("seed", [3, 17])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_shareable_transcript_of_hostile_lines_hides_them_and_replays(
        tmp_path: Path, model: str, seed: int, hostile_readers: None) -> None:
    if MODELS[model].encrypted:
        pytest.importorskip("freestyle_keys", reason="the virtual Libre 2/3 needs freestyle-keys")
    device = f"sim:{model}?seed={seed}&days=2"
    shared = tmp_path / "shared.jsonl"
    # (shareable transcripts are made of text-protocol sessions: read with --protocol text)
    code, plain, err = cli("dump", "--device", device, "--tz", "UTC", "--protocol", "text")
    assert code == 0, err
    for text in HOSTILE:  # the hostile texts are really read (else this proves nothing)
        assert any(form in plain for form in _forms(text)) or model == "libre3", text
    code, _, err = cli("dump", "--device", device, "--redact", "--record", str(shared))
    assert code == 0, err
    text = _shared_text(shared)
    tokens = {t for h in HOSTILE for t in re.split(r"[\s,\"]+", h) if len(t) >= 4}
    for secret in {*HOSTILE, *tokens} | _secrets(model) - {""}:
        for form in _forms(secret):
            assert form not in text, f"the shareable transcript shows {secret!r}"
    code, again, err = cli("dump", "--device", f"replay:{shared}", "--tz", "UTC",
                           "--protocol", "text")
    assert code == 0, err
    a, b = json.loads(plain), json.loads(again)
    assert a["counts"] == b["counts"]
    for group, records in a["records"].items():
        assert [(r["record_id"], r["local_time"], r.get("glucose_mg_dl"), r.get("units"))
                for r in records] == [
            (r["record_id"], r["local_time"], r.get("glucose_mg_dl"), r.get("units"))
            for r in b["records"][group]]


# -- the shareable transcript's rules on any line ----------------------------------------------

_WORD = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF,
                                       blacklist_characters=',"'), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from(sorted(MODELS)), data=st.data())
def test_transcript_rules_hide_every_text_of_any_line(model: str, data: st.DataObject) -> None:
    """Any record line, of a known layout or not, with hostile texts anywhere: the rewritten
    line keeps its length, decodes to the same records (or is replaced whole, and counted),
    and none of its texts survives."""
    from libre_usb.output.redact import TranscriptPolicy
    from libre_usb.protocol.text.records import parse_lines
    from libre_usb.transport.shareable import TranscriptRules

    device_model = MODELS[model]
    source = data.draw(st.sampled_from(device_model.records))
    # the field counts of known layouts half the time, any count otherwise
    count = data.draw(st.one_of(st.sampled_from([11, 13, 15, 16, 19, 20, 28, 35, 37, 38, 44,
                                                 47]), st.integers(min_value=1, max_value=50)))
    numbers = st.one_of(st.integers(min_value=0, max_value=2),
                        st.integers(min_value=0, max_value=300)).map(str)
    fields = data.draw(st.lists(st.one_of(numbers, _WORD), min_size=count, max_size=count))
    if data.draw(st.booleans()):  # a type the parsers know, at the model's type position
        at = 0 if source.command == "$result?" else 1
        if at < len(fields):
            fields[at] = data.draw(st.sampled_from(["0", "2", "5", "6", "7", "9", "10", "12"]))
    line = ",".join(f'"{f}"' if data.draw(st.booleans()) and not f.isdigit() else f
                    for f in fields).encode("utf-8")
    policy = TranscriptPolicy()
    rules = TranscriptRules(device_model, policy)
    (new,) = rules.reply_lines(source.command, (line,))
    assert len(new) == len(line)
    before = parse_lines(source.parser, [line], source.command)
    after = parse_lines(source.parser, [new], source.command)
    if policy.counts["record lines replaced whole"] == 0:
        assert policy.decoded_shape(after) == policy.decoded_shape(before)
    from libre_usb.protocol.text.rewrite import mask_text

    # a text made only of the placeholders themselves (":X", "xx") is its own mask: the
    # shape-keeping rewrite cannot tell it apart, and it carries nothing but that shape
    texts = {f for f in fields if any(c.isalpha() for c in f) and len(f.strip()) >= 2
             and mask_text(f) != f}
    for text in texts:
        assert text.encode("utf-8") not in new, (text, new)
