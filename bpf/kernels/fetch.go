package kernels

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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
	pkg, err := apt.resolve(ctx, name)
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Package: pkg, Release: strings.TrimPrefix(pkg, imagePrefix)}
	k.Root = filepath.Join(cacheDir, k.Release)
	if _, err := os.Stat(k.Vmlinuz()); err == nil {
		return k, nil
	}
	if err := apt.download(ctx, cacheDir, k); err != nil {
		return Kernel{}, err
	}
	return k, nil
}

// aptConfig is the -o options that point apt at a suite's own lists;
// empty for the host's configuration.
type aptConfig []string

// aptFor splits an optional "suite:" off name and prepares that suite's
// apt lists, refreshing them when they are more than a day old.
func aptFor(ctx context.Context, cacheDir, name string) (aptConfig, string, error) {
	suite, pkg, ok := strings.Cut(name, ":")
	if !ok {
		return nil, name, nil
	}
	if suite == "" || strings.ContainsAny(suite, "/ ") {
		return nil, "", fmt.Errorf("kernel %q: bad suite %q", name, suite)
	}
	dir := filepath.Join(cacheDir, "apt", suite)
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, "", fmt.Errorf("creating apt state for %s: %w", suite, err)
		}
	}
	list := filepath.Join(dir, "sources.list")
	if err := os.WriteFile(list, []byte(sourcesList(suite)), 0o644); err != nil {
		return nil, "", err
	}
	cfg := aptConfig{
		"-o", "Dir::Etc::SourceList=" + list, "-o", "Dir::Etc::SourceParts=/nonexistent",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"), "-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
	}
	stamp := filepath.Join(dir, "updated")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < 24*time.Hour {
		return cfg, pkg, nil
	}
	if err := run(ctx, "", "apt-get", append(cfg, "update")...); err != nil {
		return nil, "", fmt.Errorf("apt-get update for %s: %w", suite, err)
	}
	return cfg, pkg, os.WriteFile(stamp, nil, 0o644)
}

func sourcesList(suite string) string {
	const key = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
	return "deb " + key + " http://deb.debian.org/debian " + suite + " main\n" +
		"deb " + key + " http://deb.debian.org/debian-security " + suite + "-security main\n"
}

// resolve follows a meta-package to the image package it pulls in; a
// versioned package name resolves to itself.
func (apt aptConfig) resolve(ctx context.Context, name string) (string, error) {
	if !strings.HasPrefix(name, imagePrefix) {
		return "", fmt.Errorf("kernel package %q: not a %s* package", name, imagePrefix)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", append(apt, "depends", name)...).Output()
	if err != nil {
		return "", fmt.Errorf("resolving kernel package %q (run apt-get update?): %w", name, err)
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

// download fetches the .deb into cacheDir/debs and unpacks it into k.Root,
// going through a temporary directory so an interrupted run leaves no
// half-unpacked kernel behind.
func (apt aptConfig) download(ctx context.Context, cacheDir string, k Kernel) error {
	debs := filepath.Join(cacheDir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return fmt.Errorf("creating kernel cache: %w", err)
	}
	deb, err := findDeb(debs, k.Package)
	if err != nil {
		if err := run(ctx, debs, "apt-get", append(apt, "download", k.Package)...); err != nil {
			return fmt.Errorf("downloading %s: %w", k.Package, err)
		}
		if deb, err = findDeb(debs, k.Package); err != nil {
			return err
		}
	}
	tmp := k.Root + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := run(ctx, "", "dpkg-deb", "-x", deb, tmp); err != nil {
		return fmt.Errorf("unpacking %s: %w", deb, err)
	}
	if err := os.Rename(tmp, k.Root); err != nil {
		return fmt.Errorf("unpacking %s: %w", deb, err)
	}
	return nil
}

func findDeb(dir, pkg string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", fmt.Errorf("no %s_*.deb in %s", pkg, dir)
	}
	return m[len(m)-1], nil
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		return errors.Join(err, errors.New(msg))
	}
	return nil
}
