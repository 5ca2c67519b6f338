"""Python calling a C extension in a loop, for vigil's Python profiling tests.

<module> > main > compress_loop calls zlib.compress on a 320 KB buffer of
incompressible bytes over and over, so most samples are in zlib's C code
(libz) under the Python frame of compress_loop. Prints its CPU time as JSON
at exit.

A line ending in "# frame: NAME" is where the frame of NAME calls on.

usage: czlib.py SECONDS (runs that long, or until SIGTERM)
"""

import hashlib
import json
import signal
import sys
import threading
import time
import zlib

stop = threading.Event()  # set by SIGTERM


def compress_loop(data, seconds):
    calls = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        zlib.compress(data, 6)  # frame: compress_loop
        calls += 1
    return calls


def main():
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seconds = float(sys.argv[1])
    data = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(10000))
    print("ready", flush=True)
    start = time.thread_time()
    calls = compress_loop(data, seconds)  # frame: main
    cpu = {"compress_loop": time.thread_time() - start}
    print(json.dumps({"cpu": cpu, "calls": calls, "tids": {"main": threading.get_native_id()}}), flush=True)


main()  # frame: <module>
