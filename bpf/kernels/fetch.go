package kernels

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-ebpf/vigil/internal/debarchive"
)

// imagePrefix starts the name of every Debian kernel image package; the rest
// of the name is the kernel release (uname -r).
const imagePrefix = "linux-image-"

// Fetch returns the kernel of a Debian package, downloading it with
// apt-get and unpacking it under cacheDir the first time. name may be a
// meta-package (linux-image-cloud-amd64), which is resolved to the
// versioned package it depends on, and may start with a Debian suite and a
// colon (bullseye:linux-image-cloud-amd64) to take it from a release the
// host's apt sources do not list; that suite gets its own apt lists under
// cacheDir, so the host's configuration is left alone.
func Fetch(ctx context.Context, cacheDir, name string) (Kernel, error) {
	apt, name, err := aptFor(ctx, cacheDir, name)
	if err != nil {
		return Kernel{}, err
	}
	pkg, err := resolve(ctx, apt, name)
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Package: pkg, Release: strings.TrimPrefix(pkg, imagePrefix)}
	k.Root = filepath.Join(cacheDir, k.Release)
	if _, err := os.Stat(k.Vmlinuz()); err == nil {
		return k, nil
	}
	if err := download(ctx, apt, cacheDir, k); err != nil {
		return Kernel{}, err
	}
	return k, nil
}

// aptFor splits an optional "suite:" off name and prepares that suite's
// apt lists; without a suite, apt uses the host's configuration.
func aptFor(ctx context.Context, cacheDir, name string) (debarchive.Apt, string, error) {
	suite, pkg, ok := strings.Cut(name, ":")
	if !ok {
		return nil, name, nil
	}
	apt, err := debarchive.Suite(ctx, cacheDir, suite)
	if err != nil {
		return nil, "", fmt.Errorf("kernel %q: %w", name, err)
	}
	return apt, pkg, nil
}

// resolve follows a meta-package to the image package it pulls in; a
// versioned package name resolves to itself.
func resolve(ctx context.Context, apt debarchive.Apt, name string) (string, error) {
	if !strings.HasPrefix(name, imagePrefix) {
		return "", fmt.Errorf("kernel package %q: not a %s* package", name, imagePrefix)
	}
	out, err := apt.Depends(ctx, name)
	if err != nil {
		return "", fmt.Errorf("resolving kernel package %q: %w", name, err)
	}
	if dep := imageDependency(out); dep != "" {
		return dep, nil
	}
	return name, nil
}

// imageDependency picks the versioned image package out of apt-cache
// depends output, or "" when the package is not a meta-package.
func imageDependency(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], imagePrefix) {
			return f[1]
		}
	}
	return ""
}

// download fetches the .deb into cacheDir/debs and unpacks it into k.Root.
func download(ctx context.Context, apt debarchive.Apt, cacheDir string, k Kernel) error {
	debs, err := apt.Download(ctx, filepath.Join(cacheDir, "debs"), k.Package)
	if err != nil {
		return err
	}
	return debarchive.Unpack(ctx, k.Root, debs...)
}
