"""One target under atheris (libFuzzer), in its own process: ``python -m fuzz.run NAME
SECONDS CORPUS CRASHES``. Started by ``python -m fuzz``; prints libFuzzer's final stats.

An input that raises anything but a documented error is written to ``CRASHES`` (input and
traceback) and the run goes on, so one run reports every distinct crash it meets.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["libre_usb"]):
    # imported here so that they are instrumented for coverage feedback
    import libre_usb.output.libreview
    import libre_usb.output.timeline
    import libre_usb.protocol.observer
    import libre_usb.reader.session
    import libre_usb.simulator
    import libre_usb.transport.capture
    import libre_usb.transport.interfaces.sim
    import libre_usb.upload.load  # noqa: F401
    from fuzz.targets import MAX_LEN, TARGETS, run_target


def main() -> None:
    name, seconds, corpus, crashes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    crash_dir = Path(crashes)
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        try:
            run_target(name, data)
        except Exception as exc:  # every other exception is a crash
            where = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__}-{Path(where.filename).name}-{where.lineno}"
            digest = hashlib.sha1(data).hexdigest()[:12]  # a file name, not security
            crash_dir.mkdir(parents=True, exist_ok=True)
            if key not in seen:
                seen.add(key)
                (crash_dir / f"{key}-{digest}.bin").write_bytes(data)
                (crash_dir / f"{key}-{digest}.txt").write_text(traceback.format_exc())
                print(f"fuzz: crash {key}", file=sys.stderr, flush=True)

    assert name in TARGETS
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1",
                   f"-max_len={MAX_LEN[name]}", "-rss_limit_mb=4096", "-timeout=30",
                   corpus], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
