"""Two Python threads, each running its own hot function, for vigil's Python
profiling tests.

spin_left and spin_right loop in threads of their own (the main thread
waits in join) and measure their CPU time with time.thread_time(); at exit
the script prints, as JSON, each function's CPU time and the native id of
the thread that ran it, so the test can match the profile's tid labels.

usage: threads.py SECONDS (runs that long, or until SIGTERM)
"""

import json
import signal
import sys
import threading
import time

UNIT = 20000  # loop iterations between clock checks: a few ms
stop = threading.Event()  # set by SIGTERM


def spin_left(seconds, out):
    start, x = time.thread_time(), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        for i in range(UNIT):
            x = (x * 31 + i) & 0xFFFF
    out["spin_left"] = (threading.get_native_id(), time.thread_time() - start)


def spin_right(seconds, out):
    start, x = time.thread_time(), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        for i in range(UNIT):
            x = (x * 17 + i) & 0xFFFF
    out["spin_right"] = (threading.get_native_id(), time.thread_time() - start)


def main():
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seconds = float(sys.argv[1])
    out = {}
    threads = [threading.Thread(target=f, args=(seconds, out)) for f in (spin_left, spin_right)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()
    print(json.dumps({"cpu": {k: v[1] for k, v in out.items()}, "tids": {k: v[0] for k, v in out.items()}}), flush=True)


main()
