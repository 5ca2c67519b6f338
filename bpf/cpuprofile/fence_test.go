package cpuprofile

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// slowProgram is a socket filter that marks word 0 of progress when it
// starts, spends tens of milliseconds in a bpf_loop of 2^23 empty
// iterations, and marks word 1 when it ends.
func slowProgram(t *testing.T) (*ebpf.Program, *ebpf.Map) {
	t.Helper()
	progress, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { progress.Close() })
	long := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	ptr := &btf.Pointer{Target: &btf.Void{}}
	// bpf_loop's callback is a subprogram, which the verifier accepts only
	// with BTF function information.
	mainFn := &btf.Func{Name: "slow", Linkage: btf.GlobalFunc, Type: &btf.FuncProto{
		Return: long, Params: []btf.FuncParam{{Name: "ctx", Type: ptr}}}}
	spinFn := &btf.Func{Name: "spin", Linkage: btf.StaticFunc, Type: &btf.FuncProto{
		Return: long, Params: []btf.FuncParam{{Name: "i", Type: long}, {Name: "ctx", Type: ptr}}}}
	insns := asm.Instructions{
		btf.WithFuncMetadata(asm.StoreImm(asm.RFP, -4, 0, asm.Word).WithSymbol("slow"), mainFn),
		asm.LoadMapPtr(asm.R1, progress.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		// if r0 != 0, skip the early return
		asm.Instruction{OpCode: asm.JNE.Op(asm.ImmSource), Dst: asm.R0, Constant: 0, Offset: 2},
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 1<<23),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("spin"),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.R7, 8, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R0, 0).WithSymbol("spin"), spinFn),
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "slow", Type: ebpf.SocketFilter, License: "GPL", Instructions: insns})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, progress
}

// TestFenceWaitsForRunningPrograms runs a slow program on one thread and,
// once it has started, waits on the drain's fence on another: when the
// fence returns the program must have ended.
func TestFenceWaitsForRunningPrograms(t *testing.T) {
	testenv.RequireRoot(t)
	if err := features.HaveProgramHelper(ebpf.SocketFilter, asm.FnLoop); err != nil {
		t.Skipf("skipped: the test's slow program needs bpf_loop (Linux 5.17): %v", err)
	}
	if runtime.NumCPU() < 2 {
		t.Skip("skipped: one CPU: a program running can't be watched from another (the kernel matrix's guests have one)")
	}
	fence, err := newProgramFence()
	if err != nil {
		t.Fatal(err)
	}
	defer fence.close()
	prog, progress := slowProgram(t)
	// The check needs the program still running when the fence is called;
	// a test thread descheduled for the whole loop can miss it, so try a
	// few times.
	for attempt := 1; attempt <= 5; attempt++ {
		if err := progress.Put(uint32(0), [2]uint64{}); err != nil {
			t.Fatal(err)
		}
		ran := make(chan error, 1)
		go func() {
			_, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
			ran <- err
		}()
		var p [2]uint64
		deadline := time.Now().Add(10 * time.Second)
		for p[0] == 0 && time.Now().Before(deadline) {
			if err := progress.Lookup(uint32(0), &p); err != nil {
				t.Fatal(err)
			}
		}
		if p[0] == 0 {
			t.Fatal("the slow program did not start within 10 s")
		}
		if p[1] != 0 {
			t.Logf("attempt %d: the program ended before the fence was called", attempt)
			if err := <-ran; err != nil {
				t.Fatal(err)
			}
			continue
		}
		start := time.Now()
		fence.wait()
		waited := time.Since(start)
		if err := progress.Lookup(uint32(0), &p); err != nil {
			t.Fatal(err)
		}
		if err := <-ran; err != nil {
			t.Fatal(err)
		}
		if p[1] != 1 {
			t.Fatalf("the fence returned after %v with the program still running", waited)
		}
		t.Logf("attempt %d: the fence waited %v for the running program", attempt, waited)
		return
	}
	t.Fatal(errors.New("in 5 attempts the slow program always ended before the fence was called"))
}

// BenchmarkFence measures one wait with no program running: the RCU grace
// period every drain now pays in wall time (it sleeps, it does not spin).
func BenchmarkFence(b *testing.B) {
	testenv.RequireRoot(b)
	fence, err := newProgramFence()
	if err != nil {
		b.Fatal(err)
	}
	defer fence.close()
	for b.Loop() {
		fence.wait()
	}
}
