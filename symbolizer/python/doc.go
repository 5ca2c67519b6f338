// Package python names the frames of CPython 3.9 to 3.13 interpreters on
// x86-64 Linux, from outside the process.
//
// A BPF program walks a thread's Python frames at sample time and records,
// per frame, the code object's address, Check of a few of its fields and
// the byte offset of the current instruction. This package supplies the
// rest, in user space:
//
//   - Inspect recognises an interpreter file (python3.N or libpython3.N.so)
//     and its version, and finds _PyRuntime, where the walk starts, and
//     _PyEval_EvalFrameDefault.
//   - Layout holds each minor version's struct offsets, generated from the
//     versions' own headers; the BPF program reads them from a map.
//   - Resolver reads code objects from /proc/<pid>/mem and names them:
//     qualified name, file and line, cached per process.
//
// A code object can be freed and its address reused between the sample and
// the read, so Resolver recomputes Check from what it reads and refuses a
// mismatch rather than name the frame wrongly. Everything read from another
// process is bounded and checked; malformed memory or files give errors,
// never panics.
package python
