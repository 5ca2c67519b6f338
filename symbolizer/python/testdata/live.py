# Run by live_test.go: prints, as one JSON line, a few code objects (their
# addresses, names and the interpreter's own line for every instruction)
# and its threads' ids, then sleeps at the lines marked "walk:" for the
# test to walk its frames from outside.
import ctypes
import dis
import json
import threading
import time

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int


class Widget:
    def méthode(self):
        def inner_δ(x):
            return x + 1
        return inner_δ


def describe(co):
    return {
        "addr": id(co),  # CPython's id is the object's address
        "function": getattr(co, "co_qualname", co.co_name),
        "file": co.co_filename,
        "firstlineno": co.co_firstlineno,
        "lines": [addr2line(co, off) for off in range(0, len(co.co_code), 2)],
        # Where the call instructions are (CALL_FUNCTION, CALL_METHOD, CALL).
        "calls": [i.offset for i in dis.get_instructions(co) if i.opname.startswith("CALL")],
    }


def bg_sleep(ready):
    ready.set()
    time.sleep(600)  # walk:bg


def sleeper(bg):
    codes = [Widget.méthode.__code__, Widget().méthode().__code__, sleeper.__code__]
    print(json.dumps({"codes": [describe(c) for c in codes],
                      "main": threading.get_ident(), "bg": bg.ident}), flush=True)
    time.sleep(600)  # walk:sleeper


def outer():
    ready = threading.Event()
    bg = threading.Thread(target=bg_sleep, args=(ready,), daemon=True)
    bg.start()
    ready.wait()
    sleeper(bg)  # walk:outer


outer()  # walk:module
