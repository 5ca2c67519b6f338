"""Blocking Python for vigil's off-CPU tests.

<module> > main calls wait_sleep, which sleeps 5 ms at a time, in a loop.
wait_sleep measures the wall time it spends blocked; the total and the
time the loop ran are printed as JSON at exit, so the test can compare the
share of the time spent blocked with the off-CPU profile's.

A line ending in "# frame: NAME" is where the frame of NAME calls on.

usage: waits.py SECONDS (runs that long, or until SIGTERM)
"""

import json
import signal
import sys
import threading
import time

stop = threading.Event()  # set by SIGTERM


def wait_sleep(blocked):
    start = time.monotonic()
    time.sleep(0.005)
    blocked["wait_sleep"] += time.monotonic() - start


def main():
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seconds = float(sys.argv[1])
    blocked = {"wait_sleep": 0.0}
    print("ready", flush=True)
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end and not stop.is_set():
        wait_sleep(blocked)  # frame: main
    blocked["elapsed"] = time.monotonic() - start
    print(json.dumps({"cpu": blocked, "tids": {"main": threading.get_native_id()}}), flush=True)


main()  # frame: <module>
