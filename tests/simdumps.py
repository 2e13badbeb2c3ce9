"""Placed dumps of the virtual reader's content, built without the USB round trip (fast):
for the archive, format and report tests."""

from __future__ import annotations

import datetime as dt

from libre_usb.devices import MODELS
from libre_usb.model import DeviceInfo, Dump
from libre_usb.output import timeline
from libre_usb.simulator.content import generate

ZONE = "Europe/Berlin"


def content_dump(seed: int = 3, *, days: int = 90, now: dt.datetime | None = None,
                 serial: str | None = None, model: str = "libre",
                 unit: str | None = None) -> Dump:
    kwargs = {} if now is None else {"now": now}
    content = generate(seed, model=model, days=days, **kwargs)  # type: ignore[arg-type]
    device = DeviceInfo(model=model, product_id=MODELS[model].product_ids[0],
                        serial=serial or content.serial, unit=unit or content.unit,
                        clock=content.clock, record_count=content.record_counter)
    return timeline.place(Dump(device=device, records=tuple(content.records)), ZONE)
