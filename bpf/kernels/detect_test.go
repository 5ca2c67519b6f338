package kernels

import (
	"context"
	"testing"
)

func TestImageDependency(t *testing.T) {
	meta := "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n"
	if got := imageDependency([]byte(meta)); got != "linux-image-6.1.0-56-cloud-amd64" {
		t.Errorf("meta-package resolves to %q", got)
	}
	real := "linux-image-6.1.0-56-cloud-amd64\n  PreDepends: linux-base\n  Depends: kmod\n  Depends: initramfs-tools\n"
	if got := imageDependency([]byte(real)); got != "" {
		t.Errorf("versioned package resolves to %q, want itself", got)
	}
}

func TestHasVirtFlag(t *testing.T) {
	cases := map[string]bool{
		"processor\t: 0\nflags\t\t: fpu vme sse2 vmx ssse3\n": true,
		"flags\t\t: fpu svm\n":                                true,
		"flags\t\t: fpu vmxnet sse2\nvmx flags\t: ept\n":      false,
		"": false,
	}
	for in, want := range cases {
		if got := hasVirtFlag([]byte(in)); got != want {
			t.Errorf("hasVirtFlag(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestJobListRoundsTimeoutsUp(t *testing.T) {
	got := jobList([]Job{{Name: "a", Binary: "/x/a.test", Args: []string{"-test.v"}, Dir: "src/a/", Timeout: 1}})
	if got != "a\t1\t/src/a\t./a.test -test.v\n" {
		t.Errorf("jobList = %q", got)
	}
}

func TestFetchRejectsBadNames(t *testing.T) {
	for _, name := range []string{"/bad:linux-image-x", ":linux-image-x"} {
		if _, err := Fetch(context.Background(), t.TempDir(), name); err == nil {
			t.Errorf("Fetch(%q) accepted", name)
		}
	}
	if _, err := resolve(context.Background(), nil, "bash"); err == nil {
		t.Error("resolve accepted a package that is not a kernel image")
	}
}
