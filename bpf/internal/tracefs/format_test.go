package tracefs

import (
	"os"
	"strings"
	"testing"
)

func mustParseFile(t *testing.T, path string) *Format {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fm, err := ParseFormat(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fm
}

func TestParseFormatBlockRqIssue(t *testing.T) {
	fm := mustParseFile(t, "testdata/block_rq_issue-6.18.format")
	if fm.Name != "block_rq_issue" || fm.ID != 2104 {
		t.Errorf("name, id = %q, %d", fm.Name, fm.ID)
	}
	want := map[string]Field{
		"common_type": {Name: "common_type", Type: "unsigned short", Offset: 0, Size: 2},
		"common_pid":  {Name: "common_pid", Type: "int", Offset: 4, Size: 4, Signed: true},
		"dev":         {Name: "dev", Type: "dev_t", Offset: 8, Size: 4},
		"sector":      {Name: "sector", Type: "sector_t", Offset: 16, Size: 8},
		"rwbs":        {Name: "rwbs", Type: "char[10]", Offset: 34, Size: 10},
		"cmd":         {Name: "cmd", Type: "__data_loc char[]", Offset: 60, Size: 4},
	}
	for name, w := range want {
		got, err := fm.Field(name)
		if err != nil {
			t.Error(err)
			continue
		}
		if got != w {
			t.Errorf("field %s = %+v, want %+v", name, got, w)
		}
	}
	if _, err := fm.Field("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing field error = %v, want it to name the field", err)
	}
}

func TestParseFormatPointersAndArrays(t *testing.T) {
	fm := mustParseFile(t, "testdata/tcp_probe-6.18.format")
	for name, w := range map[string]Field{
		"saddr":  {Name: "saddr", Type: "__u8[28]", Offset: 8, Size: 28},
		"srtt":   {Name: "srtt", Type: "__u32", Offset: 100, Size: 4},
		"skaddr": {Name: "skaddr", Type: "const void *", Offset: 128, Size: 8},
		"family": {Name: "family", Type: "__u16", Offset: 68, Size: 2},
	} {
		got, err := fm.Field(name)
		if err != nil || got != w {
			t.Errorf("field %s = %+v, %v; want %+v", name, got, err, w)
		}
	}
}

// An older block_rq_issue layout (before ioprio was added and rwbs grew to
// 10 bytes) parses to the offsets that kernel used.
func TestParseFormatOlderLayout(t *testing.T) {
	const old = `name: block_rq_issue
ID: 1114
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:dev_t dev;	offset:8;	size:4;	signed:0;
	field:sector_t sector;	offset:16;	size:8;	signed:0;
	field:unsigned int nr_sector;	offset:24;	size:4;	signed:0;
	field:unsigned int bytes;	offset:28;	size:4;	signed:0;
	field:char rwbs[8];	offset:32;	size:8;	signed:1;
	field:char comm[16];	offset:40;	size:16;	signed:1;
	field:__data_loc char[] cmd;	offset:56;	size:4;	signed:1;

print fmt: "%d,%d %s %u (%s) %llu + %u [%s]", ...
`
	fm, err := ParseFormat(strings.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	rwbs, err := fm.Field("rwbs")
	if err != nil || rwbs.Offset != 32 || rwbs.Size != 8 || !rwbs.Signed {
		t.Errorf("rwbs = %+v, %v; want offset 32 size 8 signed", rwbs, err)
	}
}

func TestParseFormatErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"no fields":   "name: x\nID: 3\n",
		"bad id":      "ID: abc\n",
		"bad offset":  "\tfield:int a;\toffset:x;\tsize:4;\tsigned:1;\n",
		"zero size":   "\tfield:int a;\toffset:0;\tsize:0;\tsigned:1;\n",
		"no name":     "\tfield:int;\toffset:0;\tsize:4;\tsigned:1;\n",
		"short field": "\tfield:int a;\n",
		"huge line":   "\tfield:int " + strings.Repeat("a", maxLineBytes) + ";\toffset:0;\tsize:4;\n",
		"too large":   strings.Repeat("\n", maxFormatBytes+2),
	} {
		if _, err := ParseFormat(strings.NewReader(in)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestParseFormatTooManyFields(t *testing.T) {
	var b strings.Builder
	for range maxFields + 1 {
		b.WriteString("\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;\n")
	}
	if _, err := ParseFormat(strings.NewReader(b.String())); err == nil {
		t.Error("parsed more than maxFields fields")
	}
}

func FuzzParseFormat(f *testing.F) {
	for _, p := range []string{"block_rq_issue-6.18", "block_rq_complete-6.18", "tcp_probe-6.18", "inet_sock_set_state-6.18"} {
		b, err := os.ReadFile("testdata/" + p + ".format")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\tfield:char x[;\toffset:1;\tsize:1;\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fm, err := ParseFormat(strings.NewReader(string(in)))
		if err != nil {
			return
		}
		if len(fm.Fields) == 0 || len(fm.Fields) > maxFields {
			t.Fatalf("%d fields", len(fm.Fields))
		}
		for _, fl := range fm.Fields {
			if !isIdent(fl.Name) || fl.Size == 0 {
				t.Fatalf("bad field %+v", fl)
			}
		}
	})
}
