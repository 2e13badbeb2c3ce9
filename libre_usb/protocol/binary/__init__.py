"""The vendor's binary database protocol ("ABMP"), sans-I/O.

What Abbott's own software speaks to FreeStyle Libre and Libre Pro readers inside HID reports
0x0A/0x0B (data) and 0x0D/0x0C (ACKs); docs/binary-protocol.md describes it, with its
public sources (Tidepool's uploader, whose authors followed Abbott's specification).

Modules, bottom up:

``wire``     construct definitions of every layout (ATP frame, ACK, AAP frame, date/time,
             ERROR reply, schema table, compressed block) and the op codes, table ids, error
             codes and field types
``crc``      the STM32-style CRC32 of frames and compressed records, the record CRC16
``aap``      building AAP frames; :class:`~.aap.AapDecoder` reassembles them from ATP data
``link``     the link state machines: :class:`~.link.HostLink` (what the session drives),
             :class:`~.link.DeviceLink` (the virtual reader's end), :class:`~.link.Monitor`
             (passive decoding of captures)
``schema``   schema tables and reading/writing any field by its descriptor
``records``  record header, CRC16, decompression, 32-bit record numbers
``fields``   names of the database and config field ids and record types
``decode``   schema-driven decoding of whole replies into libre-dump records and settings

Passive decoding of a capture (host->reader and reader->host reports, in capture order)::

    from libre_usb.protocol.binary.link import Monitor, Reply, CommandReceived

    monitor = Monitor()
    for direction, report in capture:          # direction "out" (host->reader) or "in"
        for seen in monitor.feed(direction, report):
            if isinstance(seen.event, CommandReceived):   # a host command (op, data)
                ...
            elif isinstance(seen.event, Reply):           # a complete reply (op, frames)
                ...

Nothing is sent and nothing is assumed about timing: the monitor reports CRC errors, gaps,
duplicates (retransmissions) and ACKs as events, and the replies it can complete. Replies can
then be decoded with :func:`~.decode.decode_session` like the session does.

Only reads are built by default: :class:`~.link.HostLink` refuses SET_DATE_TIME unless
created with ``allow_clock=True``, and no CLEAR op exists in this package at all.
"""
