"""Device models as data: one :class:`DeviceModel` per reader family, no class per model.

A model says which USB product ids it has, whether the transport is encrypted, how text
commands are sent, which commands answer serial / version / unit, which informational
commands to read, and which record commands to send with which parser
(:data:`libre_usb.protocol.text.records.PARSERS`).

Only read-only commands appear here. :func:`is_read_only` is the gate the session uses:
nothing that writes to the reader is ever sent unless a caller explicitly allows the
clock setters, and erase commands (``$resetpatient``) are refused always.
"""

from __future__ import annotations

import msgspec

from .errors import InputError


class RecordSource(msgspec.Struct, frozen=True):
    """A multi-record command and the parser of its lines."""

    command: str
    parser: str


class DeviceModel(msgspec.Struct, frozen=True):
    name: str
    title: str
    product_ids: tuple[int, ...]
    encrypted: bool = False
    #: the message type of text commands (0x60 works on every reader; Abbott sends 0x21)
    text_command_type: int = 0x60
    serial_command: str = "$sn?"
    version_command: str = "$swver?"
    #: command answering the display unit, and its reply -> unit name
    unit_command: str | None = "$uom?"
    unit_values: tuple[tuple[str, str], ...] = (("0", "mmol/L"), ("1", "mg/dL"))
    #: informational read-only commands whose replies go into the dump
    info_commands: tuple[str, ...] = ()
    records: tuple[RecordSource, ...] = ()
    #: whether the clock is read with $rdt? (Libre family) or $date?/$time?
    has_rdt: bool = True
    #: how the reader encodes text (Libre: UTF-8, sometimes broken, decoded with
    #: replacement; InsuLinx: Latin-1, protocol.md 2.4)
    text_encoding: str = "utf-8"
    #: the table that names ``$lang?`` codes, when known for this family ("libre")
    language_table: str | None = None
    #: the binary database protocol (docs/binary-protocol.md): whether the reader speaks it,
    #: which config and database tables Abbott's software reads (Tidepool), and whether it
    #: turns compression on
    binary: bool = False
    binary_config_tables: tuple[int, ...] = ()
    binary_db_tables: tuple[int, ...] = ()
    binary_compression: bool = False
    #: the protocol ``--protocol`` defaults to
    default_protocol: str = "text"
    #: the meter's event log (``$event?``: Neo, InsuLinx), read after the records; kept raw
    event_command: str | None = None


_LIBRE_INFO = (
    "$ptname?", "$ptid?", "$dbrnum?", "$rdt?", "$date?", "$time?", "$brandname?",
    "$marketlev?", "$lang?", "$ntsound?", "$btsound?", "$getrmndr,0", "$patch?",
)
_LIBRE_RECORDS = (
    RecordSource("$history?", "libre_history"),
    RecordSource("$arresult?", "libre_arresult"),
)
#: shared HID protocol commands every $result? meter answers (protocol.md 3)
_METER_INFO = ("$date?", "$time?", "$ptname?", "$ptid?")
#: the InsuLinx's read-only informational commands, in the order Abbott's software sends
#: them in the real capture (protocol.md 3). Left out: ``$custthm?`` (the theme bitmap, about
#: 40 kB of hex and no health data) and ``$hwver?``/``$ioblog?`` (named by OpenGlucose only,
#: never seen answered). ``$event?`` is read with the records (``event_command``).
_INSULINX_INFO = (
    *_METER_INFO,
    "$getrmndrst,0", "$getrmndr,0", "$rmdstrorder?", "$actthm?", "$wktrend?", "$clktyp?",
    "$alllang?", "$lang?", "$inslock?", "$actinscal?", "$iobstatus?", "$foodunits?",
    "$svgsdef?", "$corsetup?", "$insdose?", "$inslog?", "$inscalsetup?", "$carbratio?",
    "$svgsratio?", "$mlcalget,3", "$cttype?", "$bgdrop?", "$bgtrgt?", "$bgtgrng?",
    "$ntsound?", "$btsound?", "$taglang?", "$tagsenbl?", "$tagorder?", "$gettags,2,2",
    "$frststrt?",
)
#: ``$gunits?`` (Neo, InsuLinx): ``1`` on a mg/dL meter (GP); ``0`` read as mmol/L like ``$uom?``
_GUNITS = (("0", "mmol/L"), ("1", "mg/dL"))

MODELS: dict[str, DeviceModel] = {
    model.name: model
    for model in (
        DeviceModel(
            name="libre",
            title="FreeStyle Libre",
            product_ids=(0x3650,),
            info_commands=_LIBRE_INFO,
            records=_LIBRE_RECORDS,
            language_table="libre",
            binary=True,
            binary_config_tables=(1, 2, 3, 4, 5, 6, 7, 9, 10),
            binary_db_tables=(0, 1, 6, 7),
            binary_compression=True,
        ),
        DeviceModel(
            name="libre_pro",
            title="FreeStyle Libre Pro",
            product_ids=(0x3670,),
            info_commands=_LIBRE_INFO,
            records=_LIBRE_RECORDS,
            language_table="libre",
            # the Pro has fewer tables and Abbott's software leaves compression off and reads
            # config tables 1..4 (Tidepool); 7 (the note texts) is asked for too: a reader
            # without it answers ERROR, and the table is skipped
            binary=True,
            binary_config_tables=(1, 2, 3, 4, 7),
            binary_db_tables=(0, 6, 7),
            default_protocol="binary",
        ),
        DeviceModel(
            name="libre2",
            title="FreeStyle Libre 2",
            product_ids=(0x3950,),
            encrypted=True,
            info_commands=_LIBRE_INFO,
            # its $arresult? lines have three more fields than the Libre's (docs/records.md)
            records=(
                RecordSource("$history?", "libre2_history"),
                RecordSource("$arresult?", "libre2_arresult"),
            ),
            language_table="libre",
        ),
        DeviceModel(
            name="libre3",
            title="FreeStyle Libre 3",
            product_ids=(0x3960,),
            encrypted=True,
            info_commands=_LIBRE_INFO,
            records=(
                RecordSource("$history?", "libre3_history"),
                RecordSource("$arresult?", "libre3_arresult"),
            ),
            language_table="libre",
        ),
        DeviceModel(
            name="neo",
            title="FreeStyle Precision/Optium Neo",
            product_ids=(0x3850,),
            serial_command="$serlnum?",
            unit_command="$gunits?",
            unit_values=_GUNITS,
            info_commands=(*_METER_INFO, "$marketlev?"),
            records=(RecordSource("$result?", "neo_result"),),
            has_rdt=False,
            event_command="$event?",
        ),
        DeviceModel(
            name="insulinx",
            title="FreeStyle InsuLinx",
            # 0x3460 per glucometerutils and OpenGlucose; the device descriptor in
            # OpenGlucose's own capture says 0x3450 (protocol.md 9.1): accept both
            product_ids=(0x3460, 0x3450),
            serial_command="$serlnum?",
            unit_command="$gunits?",
            unit_values=_GUNITS,
            info_commands=_INSULINX_INFO,
            records=(RecordSource("$result?", "insulinx_result"),),
            has_rdt=False,
            # $event?: listed for the InsuLinx by OpenGlucose (protocol.md 3); Abbott's
            # software is not seen sending it in OpenGlucose's capture (plug-in only), but it
            # reads it from the Neo. Read-only; a CMD Fail! or no answer leaves it out
            event_command="$event?",
            text_encoding="latin-1",
        ),
    )
}

#: every Abbott HID reader product id we know, with its model name
KNOWN_PRODUCT_IDS: dict[int, str] = {
    pid: model.name for model in MODELS.values() for pid in model.product_ids
}


def model_by_name(name: str) -> DeviceModel:
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(
            f"unknown reader model {name!r}; known: {', '.join(sorted(MODELS))}"
        ) from None


def model_for_product_id(product_id: int) -> DeviceModel:
    name = KNOWN_PRODUCT_IDS.get(product_id)
    if name is None:
        raise InputError(f"USB product id 0x{product_id:04x} is not a known FreeStyle reader")
    return MODELS[name]


#: commands that read and never change the reader, beyond the ``...?`` queries
_READ_ONLY_WITH_ARGS = frozenset({"$getrmndr,0", "$getrmndrst,0", "$mlcalget,3", "$gettags,2,2"})
#: commands that change the reader and that a caller may allow explicitly
CLOCK_SETTERS = ("$date,", "$time,")
#: commands that erase data: never sent, whatever the caller says
FORBIDDEN = ("$resetpatient", "$swreset", "$resetall", "$erase", "$clear")


def is_read_only(command: str) -> bool:
    """True for commands that only read (``$xxx?`` and a few known getters)."""
    command = command.strip()
    if any(command.lower().startswith(bad) for bad in FORBIDDEN):
        return False
    if command.startswith("$") and command.endswith("?") and "," not in command:
        return True
    return command in _READ_ONLY_WITH_ARGS
