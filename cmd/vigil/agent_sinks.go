package main

import (
	"fmt"

	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// openSinks builds every configured profile sink, each behind its own
// bounded retry queue so one slow backend never holds up another.
func (a *agent) openSinks() error {
	s := a.cfg.Sinks
	var sinks []profilesink.Sink
	if s.Directory.Path != "" {
		d, err := profilesink.NewDirectory(profilesink.DirectoryConfig{
			Path: s.Directory.Path, MaxFiles: s.Directory.MaxFiles, MaxBytes: int64(s.Directory.MaxBytes),
		}, a.log.With("sink", "directory"))
		if err != nil {
			return fmt.Errorf("sinks.directory: %w", err)
		}
		sinks = append(sinks, d)
	}
	if s.OTLP.Endpoint != "" {
		o, err := profilesink.NewOTLP(profilesink.OTLPConfig{
			Endpoint: s.OTLP.Endpoint, Protocol: s.OTLP.Protocol, Insecure: s.OTLP.Insecure,
			Headers: s.OTLP.Headers, Timeout: s.OTLP.Timeout,
		})
		if err != nil {
			return fmt.Errorf("sinks.otlp: %w", err)
		}
		sinks = append(sinks, o)
	}
	if s.Pyroscope.URL != "" {
		p, err := profilesink.NewPyroscope(profilesink.PyroscopeConfig{
			URL: s.Pyroscope.URL, API: s.Pyroscope.API, TenantID: s.Pyroscope.TenantID,
			Username: s.Pyroscope.BasicAuth.Username, Password: s.Pyroscope.BasicAuth.Password,
			BearerToken: s.Pyroscope.BearerToken, Labels: s.Pyroscope.Labels,
		})
		if err != nil {
			return fmt.Errorf("sinks.pyroscope: %w", err)
		}
		sinks = append(sinks, p)
	}
	for _, sink := range sinks {
		q, err := profilesink.NewQueued(sink, queueConfig(s.Queue), a.log.With("sink", sink.Name()))
		if err != nil {
			sink.Close()
			return fmt.Errorf("sinks.queue: %w", err)
		}
		a.sinks = append(a.sinks, q)
		a.log.Info("sending profiles", "sink", sink.Name())
	}
	return nil
}

func queueConfig(q config.Queue) profilesink.QueueConfig {
	return profilesink.QueueConfig{MaxBatches: q.MaxBatches, RetryInitial: q.RetryInitial, RetryMax: q.RetryMax, MaxAge: q.MaxAge}
}
