"""CPU-bound Python in one thread for vigil's Python profiling tests.

<module> > main > run calls Worker.hot_a, Worker.hot_b and hot_nested (a
function nested in run) in turn, in a 2:1:1 ratio of work. Each call's CPU
time is measured with time.thread_time(); the totals are printed as JSON at
exit so the test can compare them with the profile's shares. The work is
pure-Python loops, so each function's share is stable.

A line ending in "# frame: NAME" is where the frame of NAME calls on.

usage: hot.py SECONDS (runs that long, or until SIGTERM)
"""

import json
import signal
import sys
import threading
import time

UNIT = 20000  # loop iterations of one unit of work: a few ms
stop = threading.Event()  # set by SIGTERM


class Worker:
    def __init__(self):
        self.acc = 0

    def hot_a(self):
        x = self.acc
        for i in range(2 * UNIT):
            x = (x * 31 + i) & 0xFFFF
        self.acc = x

    def hot_b(self):
        x = self.acc
        for i in range(UNIT):
            x = (x * 17 + i) & 0xFFFF
        self.acc = x


def run(worker, seconds, cpu):
    def hot_nested():
        x = worker.acc
        for i in range(UNIT):
            x = (x * 13 + i) & 0xFFFF
        worker.acc = x

    calls = [("hot_a", worker.hot_a), ("hot_b", worker.hot_b), ("hot_nested", hot_nested)]
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        for name, fn in calls:
            start = time.thread_time()
            fn()  # frame: run
            cpu[name] += time.thread_time() - start


def main():
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seconds = float(sys.argv[1])
    cpu = {"hot_a": 0.0, "hot_b": 0.0, "hot_nested": 0.0}
    print("ready", flush=True)
    run(Worker(), seconds, cpu)  # frame: main
    print(json.dumps({"cpu": cpu, "tids": {"main": threading.get_native_id()}}), flush=True)


main()  # frame: <module>
