// Command vigil is an eBPF host agent: whole-machine CPU profiles and kernel
// latency histograms, exported over OpenTelemetry.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitRuntime = 1 // the command was well formed but failed while running
	exitUsage   = 2 // bad flag, bad value, bad config: nothing was started
)

// usageError marks errors caused by what the user typed; they exit with 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the agent: continuous profiles and latency histograms to every configured sink", runAgent},
		{"profile", "sample every CPU and write a symbolized pprof (or folded) profile", runProfile},
		{"latency", "print kernel latency histograms and export them over OTLP", runLatency},
		{"check", "show which attach strategy each hook uses on this kernel", runCheck},
		{"version", "print the version", runVersion},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()})))
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(c.run(args[1:], stdout, stderr), stderr)
		}
	}
	fmt.Fprintf(stderr, "vigil: unknown command %q (run 'vigil help')\n", args[0])
	return exitUsage
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "vigil: %v\n", err)
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitRuntime
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'vigil <command> -h' for the flags of one command")
}

func logLevel() slog.Level {
	if os.Getenv("VIGIL_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func runVersion(_ []string, stdout, _ io.Writer) error {
	fmt.Fprintf(stdout, "vigil %s\n", version)
	return nil
}
