"""A short-lived Python process for vigil's Python profiling tests: about
300 ms of CPU in short_lived_burn, then exit. Prints its CPU time as JSON.

A line ending in "# frame: NAME" is where the frame of NAME calls on.
"""

import json
import threading
import time


def short_lived_burn(cpu_seconds):
    x = 0
    start = time.thread_time()
    while time.thread_time() - start < cpu_seconds:
        for i in range(1000):
            x = (x * 31 + i) & 0xFFFF
    return time.thread_time() - start


cpu = short_lived_burn(0.3)  # frame: <module>
print(json.dumps({"cpu": {"short_lived_burn": cpu}, "tids": {"main": threading.get_native_id()}}), flush=True)
