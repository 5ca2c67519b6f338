// offsets.c prints the offsets vigil reads in one CPython minor version, as
// "Field value" lines for genlayout. It is compiled against that version's
// own headers (internal ones included), so the numbers are the compiler's,
// not transcribed by hand.
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>

#include "pycore_runtime.h"
#include "pycore_interp.h"
#if PY_MINOR_VERSION >= 11
#include "pycore_frame.h"
#else
#include <frameobject.h>
#endif

#define P(name, value) printf("%s %lu\n", name, (unsigned long)(value))

int main(void) {
	P("Minor", PY_MINOR_VERSION);
	P("RuntimeInterpretersHead", offsetof(_PyRuntimeState, interpreters.head));
#if PY_MINOR_VERSION >= 11
	P("InterpThreadsHead", offsetof(PyInterpreterState, threads.head));
#else
	P("InterpThreadsHead", offsetof(PyInterpreterState, tstate_head));
#endif
	P("TstateNext", offsetof(PyThreadState, next));
	P("TstateThreadID", offsetof(PyThreadState, thread_id));
#if PY_MINOR_VERSION >= 13
	P("TstateFrame", offsetof(PyThreadState, current_frame));
#elif PY_MINOR_VERSION >= 11
	P("TstateFrame", offsetof(PyThreadState, cframe));
	P("CFrameCurrentFrame", offsetof(_PyCFrame, current_frame));
#else
	P("TstateFrame", offsetof(PyThreadState, frame));
#endif

#if PY_MINOR_VERSION >= 11
	P("FramePrevious", offsetof(struct _PyInterpreterFrame, previous));
#if PY_MINOR_VERSION >= 13
	P("FrameCode", offsetof(struct _PyInterpreterFrame, f_executable));
	P("FrameInstr", offsetof(struct _PyInterpreterFrame, instr_ptr));
#else
	P("FrameCode", offsetof(struct _PyInterpreterFrame, f_code));
	P("FrameInstr", offsetof(struct _PyInterpreterFrame, prev_instr));
#endif
#if PY_MINOR_VERSION == 11
	P("FrameOwner", offsetof(struct _PyInterpreterFrame, is_entry));
#else
	P("FrameOwner", offsetof(struct _PyInterpreterFrame, owner));
	P("OwnedByCStack", FRAME_OWNED_BY_CSTACK);
#endif
#else
	P("FramePrevious", offsetof(PyFrameObject, f_back));
	P("FrameCode", offsetof(PyFrameObject, f_code));
	P("FrameInstr", offsetof(PyFrameObject, f_lasti));
#endif

#if PY_MINOR_VERSION >= 11
	P("CodeAdaptive", offsetof(PyCodeObject, co_code_adaptive));
	P("CodeQualname", offsetof(PyCodeObject, co_qualname));
	P("CodeLineTable", offsetof(PyCodeObject, co_linetable));
#else
	P("CodeCode", offsetof(PyCodeObject, co_code));
#if PY_MINOR_VERSION == 10
	P("CodeLineTable", offsetof(PyCodeObject, co_linetable));
#else
	P("CodeLineTable", offsetof(PyCodeObject, co_lnotab));
#endif
#endif
	P("CodeName", offsetof(PyCodeObject, co_name));
	P("CodeFilename", offsetof(PyCodeObject, co_filename));
	P("CodeFirstLineNo", offsetof(PyCodeObject, co_firstlineno));

	P("ASCIISize", sizeof(PyASCIIObject));
	P("CompactSize", sizeof(PyCompactUnicodeObject));
	P("UnicodeLength", offsetof(PyASCIIObject, length));
	P("UnicodeState", offsetof(PyASCIIObject, state));
	P("BytesSize", offsetof(PyVarObject, ob_size));
	P("BytesData", offsetof(PyBytesObject, ob_sval));

#if PY_MINOR_VERSION >= 13
	// Where the interpreter itself records the same offsets, at the start of
	// _PyRuntime; vigil compares them with the ones above when it inspects a
	// binary, which catches free-threaded and patched builds.
#define D(name, member) printf("Debug%s %lu\n", name, (unsigned long)offsetof(_Py_DebugOffsets, member))
	D("Version", version);
	D("FreeThreaded", free_threaded);
	D("RuntimeInterpretersHead", runtime_state.interpreters_head);
	D("InterpThreadsHead", interpreter_state.threads_head);
	D("TstateNext", thread_state.next);
	D("TstateThreadID", thread_state.thread_id);
	D("TstateFrame", thread_state.current_frame);
	D("FramePrevious", interpreter_frame.previous);
	D("FrameCode", interpreter_frame.executable);
	D("FrameInstr", interpreter_frame.instr_ptr);
	D("FrameOwner", interpreter_frame.owner);
	D("CodeAdaptive", code_object.co_code_adaptive);
	D("CodeName", code_object.name);
	D("CodeQualname", code_object.qualname);
	D("CodeFilename", code_object.filename);
	D("CodeFirstLineNo", code_object.firstlineno);
	D("CodeLineTable", code_object.linetable);
	D("ASCIISize", unicode_object.asciiobject_size);
	D("UnicodeLength", unicode_object.length);
	D("UnicodeState", unicode_object.state);
	D("BytesSize", bytes_object.ob_size);
	D("BytesData", bytes_object.ob_sval);
#endif
	return 0;
}
