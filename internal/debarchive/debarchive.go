// Package debarchive takes packages from Debian's archive for the tests: the
// kernel matrix's kernels and the end-to-end tests' Python interpreters.
// A release the host's apt sources do not list gets apt lists of its own
// under a cache directory, so the host's configuration is left alone; its
// packages are downloaded with apt-get and unpacked with dpkg-deb, never
// installed.
package debarchive

import (
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

// Apt is the -o options that point apt-get and apt-cache at a suite's own
// lists; nil means the host's configuration.
type Apt []string

// listsMaxAge is how old a suite's lists may grow before they are fetched
// again: security updates replace packages, and old ones leave the mirrors.
const listsMaxAge = 24 * time.Hour

// Suite prepares apt lists of a Debian release (bullseye, trixie) under
// cacheDir/apt/<suite>, refreshing them when they are more than a day old.
func Suite(ctx context.Context, cacheDir, suite string) (Apt, error) {
	if suite == "" || strings.ContainsAny(suite, "/ ") {
		return nil, fmt.Errorf("bad Debian suite %q", suite)
	}
	dir := filepath.Join(cacheDir, "apt", suite)
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating apt state for %s: %w", suite, err)
		}
	}
	list := filepath.Join(dir, "sources.list")
	if err := os.WriteFile(list, []byte(sourcesList(suite)), 0o644); err != nil {
		return nil, err
	}
	// An empty package status of its own: with the host's, apt would take
	// the host's installed version of a package (libc6, zlib1g) as the
	// one to download, which the suite does not have.
	status := filepath.Join(dir, "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		return nil, err
	}
	apt := Apt{
		"-o", "Dir::Etc::SourceList=" + list, "-o", "Dir::Etc::SourceParts=/nonexistent",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"), "-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Dir::State::status=" + status,
	}
	stamp := filepath.Join(dir, "updated")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < listsMaxAge {
		return apt, nil
	}
	if err := run(ctx, "", "apt-get", append(apt, "update")...); err != nil {
		return nil, fmt.Errorf("apt-get update for %s: %w", suite, err)
	}
	return apt, os.WriteFile(stamp, nil, 0o644)
}

func sourcesList(suite string) string {
	const key = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
	return "deb " + key + " http://deb.debian.org/debian " + suite + " main\n" +
		"deb " + key + " http://deb.debian.org/debian-security " + suite + "-security main\n"
}

// Depends returns apt-cache depends output for pkg.
func (apt Apt) Depends(ctx context.Context, pkg string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", append(apt, "depends", pkg)...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache depends %s (run apt-get update?): %w", pkg, err)
	}
	return out, nil
}

// Download makes sure dir holds a .deb of each package, fetching the
// missing ones, and returns their paths in the order of pkgs.
func (apt Apt) Download(ctx context.Context, dir string, pkgs ...string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating package cache: %w", err)
	}
	var missing []string
	for _, p := range pkgs {
		if _, err := FindDeb(dir, p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		if err := run(ctx, dir, "apt-get", append(append(apt, "download"), missing...)...); err != nil {
			return nil, fmt.Errorf("downloading %s: %w", strings.Join(missing, " "), err)
		}
	}
	debs := make([]string, len(pkgs))
	for i, p := range pkgs {
		deb, err := FindDeb(dir, p)
		if err != nil {
			return nil, err
		}
		debs[i] = deb
	}
	return debs, nil
}

// FindDeb returns the .deb of pkg in dir (the last version by name).
func FindDeb(dir, pkg string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", fmt.Errorf("no %s_*.deb in %s", pkg, dir)
	}
	return m[len(m)-1], nil
}

// Unpack extracts debs into one tree at dest, going through a temporary
// directory so an interrupted run leaves no half-unpacked tree behind.
func Unpack(ctx context.Context, dest string, debs ...string) error {
	tmp := dest + ".tmp"
	_ = os.RemoveAll(tmp)
	for _, deb := range debs {
		if err := run(ctx, "", "dpkg-deb", "-x", deb, tmp); err != nil {
			return fmt.Errorf("unpacking %s: %w", deb, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("unpacking into %s: %w", dest, err)
	}
	return nil
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
