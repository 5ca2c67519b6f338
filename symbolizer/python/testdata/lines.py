# Prints, as JSON, the line tables of the code objects compiled from SOURCE
# and the line the running interpreter gives each instruction: from
# co_lines() (3.10+) and from its own C function PyCode_Addr2Line, which
# frames use for f_lineno. vigil's decoders must agree with both.
import ctypes
import json
import sys
import types

SOURCE = '''
import os


def simple(a, b):
    c = a + b
    return c


def loops(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            continue
        while total > 100:
            total -= 7
        total += i
    return total


def handlers(x):
    try:
        y = 1 / x
    except ZeroDivisionError:
        y = None
    finally:
        x = 0
    with open(os.devnull) as f:
        f.read()
    return y


def multiline(a,
              b,
              c):
    return (a +
            b *
            c) if a else os.path.join(
        "x",
        "y",
    )


class Shape:
    def area(self):
        def inner(k):
            return [k * j for j in range(3)]
        return sum(inner(2)) + (lambda q: q + 1)(3)

    @staticmethod
    def gen(n):
        yield from range(n)
        yield n


async def coro(x):
    return x
''' + '\n' * 300 + '''
def far_away():
    return "after three hundred blank lines"


def wide():
    return {"''' + 'k' * 200 + '''": 1, "v": ''' + 'len("' + 'w' * 150 + '")' + '''}


def jumps_back(a):
    x = [
        a,
        a + 1,
    ][
        0
    ]
    return x
''' + '\n' * 40 + '''
def after_gap():
    pass
'''

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int


def codes(co):
    yield co
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            yield from codes(c)


def describe(co):
    n = len(co.co_code)
    table = co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable
    out = {
        "name": getattr(co, "co_qualname", co.co_name),
        "firstlineno": co.co_firstlineno,
        "table": table.hex(),
        "code_bytes": n,
        # PyCode_Addr2Line per instruction (2 bytes each); -1 for none.
        "addr2line": [addr2line(co, off) for off in range(0, n, 2)],
    }
    if sys.version_info >= (3, 10):
        lines = [None] * (n // 2)
        for start, end, line in co.co_lines():
            for off in range(start, end, 2):
                lines[off // 2] = line
        out["co_lines"] = [-1 if l is None else l for l in lines]
    return out


top = compile(SOURCE, "<lines>", "exec")
v = sys.version_info
json.dump({"version": "%d.%d.%d" % (v.major, v.minor, v.micro),
           "codes": [describe(c) for c in codes(top)]}, sys.stdout, indent=1)
print()
