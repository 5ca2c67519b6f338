package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// sinkOpener opens one configured sink; key is its configuration section,
// which names it in errors.
type sinkOpener struct {
	key  string
	open func() (profilesink.Sink, error)
}

// openSinks builds every configured profile sink, each behind its own
// bounded retry queue so one slow backend never holds up another. When one
// can't be built, the ones already built are closed.
func (a *Agent) openSinks() error {
	raw, err := openEach(sinkOpeners(a.cfg.Sinks, a.sinkLog))
	if err != nil {
		return err
	}
	queued, err := queueEach(raw, queueConfig(a.cfg.Sinks.Queue), a.sinkLog)
	if err != nil {
		return err
	}
	a.sinks = queued
	for _, q := range queued {
		a.log.Info("sending profiles", "sink", q.Name())
	}
	return nil
}

// sinkOpeners lists the configured sinks in a fixed order. log is the
// logger without attributes: profilesink adds its component and the sink's
// name itself.
func sinkOpeners(s config.Sinks, log *slog.Logger) []sinkOpener {
	var out []sinkOpener
	if s.Directory.Path != "" {
		out = append(out, sinkOpener{"sinks.directory", func() (profilesink.Sink, error) {
			return profilesink.NewDirectory(profilesink.DirectoryConfig{
				Path: s.Directory.Path, MaxFiles: s.Directory.MaxFiles, MaxBytes: int64(s.Directory.MaxBytes),
			}, log)
		}})
	}
	if s.OTLP.Endpoint != "" {
		out = append(out, sinkOpener{"sinks.otlp", func() (profilesink.Sink, error) {
			return profilesink.NewOTLP(profilesink.OTLPConfig{
				Endpoint: s.OTLP.Endpoint, Protocol: s.OTLP.Protocol, Insecure: s.OTLP.Insecure,
				Headers: s.OTLP.Headers, Timeout: s.OTLP.Timeout,
			})
		}})
	}
	if s.Pyroscope.URL != "" {
		out = append(out, sinkOpener{"sinks.pyroscope", func() (profilesink.Sink, error) {
			return profilesink.NewPyroscope(profilesink.PyroscopeConfig{
				URL: s.Pyroscope.URL, API: s.Pyroscope.API, TenantID: s.Pyroscope.TenantID,
				Username: s.Pyroscope.BasicAuth.Username, Password: s.Pyroscope.BasicAuth.Password,
				BearerToken: s.Pyroscope.BearerToken, Labels: s.Pyroscope.Labels,
			})
		}})
	}
	return out
}

// openEach opens every sink in order; on a failure it closes the ones it
// opened (an OTLP sink holds a connection) and returns none.
func openEach(openers []sinkOpener) ([]profilesink.Sink, error) {
	var sinks []profilesink.Sink
	for _, o := range openers {
		s, err := o.open()
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s: %w", o.key, err), closeSinks(sinks))
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}

// queueEach puts each sink behind its own queue. On a failure it closes
// every sink, queued or not, and returns none: the caller owns nothing.
func queueEach(raw []profilesink.Sink, cfg profilesink.QueueConfig, log *slog.Logger) (profilesink.Fanout, error) {
	var out profilesink.Fanout
	for i, s := range raw {
		q, err := profilesink.NewQueued(s, cfg, log)
		if err != nil {
			// Nothing was offered yet, so a queue closes at once.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return nil, errors.Join(fmt.Errorf("sinks.queue: %w", err), out.Close(ctx), closeSinks(raw[i:]))
		}
		out = append(out, q)
	}
	return out, nil
}

func closeSinks(sinks []profilesink.Sink) error {
	var errs []error
	for _, s := range sinks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

func queueConfig(q config.Queue) profilesink.QueueConfig {
	return profilesink.QueueConfig{MaxBatches: q.MaxBatches, RetryInitial: q.RetryInitial, RetryMax: q.RetryMax, MaxAge: q.MaxAge}
}
