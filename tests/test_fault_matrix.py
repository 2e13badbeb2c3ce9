"""Every fault of the virtual reader against every model, through the CLI.

Each fault has one documented outcome (docs/reliability.md, "The fault matrix"): either
the dump is exactly the fault-free one (exit 0; for the faults marked "retried", the retry
is also noted on stderr and logged), or a one-line error with the documented exit code,
in bounded time. Never a hang, never a traceback, never wrong data.

The runs use ``--timeout 0.3`` so that the faults that end in a timeout cost little.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.devices import MODELS, DeviceModel
from libre_usb.errors import EXIT_DEVICE, EXIT_INPUT, EXIT_PROTOCOL, EXIT_TIMEOUT
from libre_usb.reader.session import DEFAULT_RETRIES, Session
from libre_usb.simulator.faults import FAULT_KINDS, parse_fault
from libre_usb.transport.interface import open_transport

DATA = "data"  # exit 0 and the fault-free dump, byte for byte
RETRIED = "retried"  # the same, after a logged retry of the broken reply

#: the documented outcome of each fault kind (docs/reliability.md)
OUTCOMES: dict[str, str | int] = {
    "drop": RETRIED,
    "duplicate": DATA,
    "stale_padding": DATA,
    "keepalive_storm": DATA,
    "keepalive_only": EXIT_TIMEOUT,
    "checksum_once": RETRIED,
    "checksum_always": EXIT_PROTOCOL,
    "trailer_count": RETRIED,
    "cut_short": RETRIED,
    "silent": EXIT_TIMEOUT,
    "unplug": EXIT_DEVICE,
    "unexpected_type": DATA,
    "unknown_message": EXIT_PROTOCOL,
    "bad_mac": EXIT_PROTOCOL,
    "flip": EXIT_PROTOCOL,
    # the binary protocol (read with --protocol binary): the link recovers by retransmission
    "atp_drop": DATA,
    "atp_corrupt": DATA,
    "atp_duplicate": DATA,
    "ack_lost": DATA,
    "host_frame_lost": DATA,
    "binary_error": EXIT_PROTOCOL,
}
#: the spelling used in the matrix (faults that need an argument get one)
SPECS = {name: name for name in FAULT_KINDS} | {"flip": "flip:0:100"}

TIMEOUT = 0.3
HAVE_KEYS = importlib.util.find_spec("freestyle_keys") is not None
NO_KEYS = "freestyle-keys is not installed: the virtual Libre 2/3 needs the published keys"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def _model_param(name: str) -> object:
    marks = [pytest.mark.skipif(not HAVE_KEYS, reason=NO_KEYS)] if MODELS[name].encrypted else []
    return pytest.param(name, marks=marks, id=name)


MODEL_PARAMS = [_model_param(name) for name in sorted(MODELS)]


def expected(fault: str, model: DeviceModel) -> str | int:
    kind = FAULT_KINDS[fault]
    if kind.encrypted_only and not model.encrypted:
        return EXIT_INPUT  # the fault cannot happen on a clear transport: a usage error
    if kind.binary_only and not model.binary:
        return EXIT_INPUT  # the model does not speak the binary protocol
    return OUTCOMES[fault]


class Run:
    """One CLI run, timed."""

    def __init__(self, args: list[str]) -> None:
        start = time.monotonic()
        result = CliRunner().invoke(main, args)
        self.seconds = time.monotonic() - start
        self.code = result.exit_code
        self.out = result.stdout
        self.err = result.stderr
        self.exception = result.exception


def uri(model: str, faults: str | None = None) -> str:
    return f"sim:{model}?seed=4&days=10" + (f"&faults={faults}" if faults else "")


def protocol_of(fault: str | None) -> str:
    """Binary faults are read with the binary protocol, every other fault with text."""
    name = (fault or "").split(":")[0].split("@")[0]
    return "binary" if name in FAULT_KINDS and FAULT_KINDS[name].binary_only else "text"


def dump(model: str, faults: str | None = None) -> Run:
    return Run(["dump", "--device", uri(model, faults), "--timeout", str(TIMEOUT),
                "--protocol", protocol_of(faults)])


class Read:
    """One whole read through the library (no rendering: the records are compared)."""

    def __init__(self, model: str, faults: str | None = None, protocol: str = "text") -> None:
        start = time.monotonic()
        with Session(open_transport(uri(model, faults)), timeout_ms=int(TIMEOUT * 1000),
                     protocol=protocol) as session:
            self.dump = session.dump()
            self.retried = list(session.retried)
        self.seconds = time.monotonic() - start


_baselines: dict[tuple[str, str], Read] = {}


def baseline(model: str, protocol: str = "text") -> Read:
    if (model, protocol) not in _baselines:
        _baselines[model, protocol] = Read(model, protocol=protocol)
    return _baselines[model, protocol]


def test_every_fault_kind_has_a_documented_outcome() -> None:
    assert set(OUTCOMES) == set(FAULT_KINDS)
    text = DOCS.read_text(encoding="utf-8")
    for name in FAULT_KINDS:
        assert f"`{name}" in text, f"docs/reliability.md does not document {name}"


@pytest.mark.parametrize("fault", sorted(FAULT_KINDS))
@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_fault_matrix(model: str, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    device_model = MODELS[model]
    outcome = expected(fault, device_model)
    protocol = protocol_of(fault) if outcome != EXIT_INPUT else "text"
    good = baseline(model, protocol)
    caplog.set_level(logging.INFO, logger="libre_usb")
    if outcome in (DATA, RETRIED):
        read = Read(model, SPECS[fault], protocol)
        assert read.dump.device == good.dump.device
        assert read.dump.records == good.dump.records, "the records differ from the fault-free dump"
        target = parse_fault(SPECS[fault], device_model).target
        retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
        if outcome == RETRIED:
            assert read.retried and set(read.retried) == {target}
            assert retries and all(m.startswith(f"{target}:") for m in retries), retries
            assert len(retries) <= DEFAULT_RETRIES
        else:
            assert read.retried == [] and retries == []
        return
    run = dump(model, SPECS[fault])
    # never a traceback, never an exception that escaped the CLI's error handling
    assert run.exception is None or isinstance(run.exception, SystemExit), run.exception
    assert "Traceback" not in run.err
    assert run.code == outcome, run.err
    assert run.out == ""
    assert run.err.startswith("libre-dump: error: ") and run.err.count("\n") == 1, run.err
    # bounded (a generous bound: the machine may be busy; a hang is what this catches)
    assert run.seconds < 3 * good.seconds + (1 + DEFAULT_RETRIES) * TIMEOUT + 5.0


def test_a_retry_is_noted_on_stderr_by_the_cli() -> None:
    run = dump("libre", "checksum_once")
    assert run.code == 0
    assert "note: retried $arresult? after a broken reply" in run.err


def test_a_duplicated_single_report_reply_does_not_shift_the_answers() -> None:
    """The bug the matrix found: the repeated last report of ``$sn?`` was taken for the
    reply to ``$swver?``, and every later answer was the one before (exit 0)."""
    good = Run(["info", "--json", "--device", "sim:libre?seed=2"])
    bad = Run(["info", "--json", "--device", "sim:libre?seed=2&faults=duplicate@$sn?"])
    assert good.code == bad.code == 0
    assert bad.out == good.out


def test_a_keepalive_flood_times_out_instead_of_hanging() -> None:
    run = Run(["info", "--device", "sim:libre?faults=keepalive_only@$sn?", "--timeout", "0.3"])
    assert run.code == EXIT_TIMEOUT and "only keepalives" in run.err
    assert run.seconds < 3.0


def test_a_dropped_only_report_is_a_reader_that_never_answered() -> None:
    """A single-report reply whose report is lost is silence: one timeout, no retry."""
    run = Run(["info", "--device", "sim:libre?faults=drop@sn", "--timeout", "0.3"])
    assert run.code == EXIT_TIMEOUT and "did not answer $sn?" in run.err


@pytest.mark.parametrize(("spec", "message"), [
    ("nosuch", "unknown sim fault 'nosuch'"),
    ("drop:x", "bad sim fault 'drop:x'"),
    ("silent:3", "takes no argument"),
    ("unexpected_type:60", "not a text or error type"),
    ("bad_mac", "needs an encrypted reader"),
])
def test_bad_fault_specs_are_usage_errors(spec: str, message: str) -> None:
    run = Run(["info", "--device", f"sim:libre?faults={spec}"])
    assert run.code == EXIT_INPUT and message in run.err and run.err.count("\n") == 1


def test_faults_can_be_combined_and_retargeted() -> None:
    read = Read("libre", "stale_padding,keepalive_storm:50@history,checksum_once@history")
    assert read.dump == baseline("libre").dump
    assert read.retried == ["$history?"]


def test_faults_with_a_paced_reader() -> None:
    """With pace_ms the injector takes the pacing over: it still sees whole replies, and
    the host still gets one report per pace_ms."""
    read = Read("libre", "checksum_once&pace_ms=0.2")
    assert read.dump == baseline("libre").dump and read.retried == ["$arresult?"]
