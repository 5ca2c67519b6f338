package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
	"github.com/vigil-ebpf/vigil/exporter/web"
)

// localView is the embedded default: recent profiles, histograms and
// vigil's own counters kept in memory and served as a web page.
type localView struct {
	store  *web.Store
	server *web.Server
	served chan error
	stop   chan struct{}
	done   chan struct{}
}

// webRefresh is how often histograms and counters are read for the page.
const webRefresh = 5 * time.Second

// webWanted: "auto" turns the view on when vigil has nowhere else to send
// what it sees (no profile sink, no OTLP metrics, no Prometheus endpoint), as
// the parsed exporter configuration says: OTEL_METRICS_EXPORTER=none with an
// endpoint set exports nothing, so the view must run. The console exporter
// is a debugging aid, not a destination.
func (a *Agent) webWanted() bool {
	elsewhere := len(a.sinks) > 0 || a.export.OTLP != nil || a.export.Prometheus != ""
	return a.cfg.Web.Enabled.On(!elsewhere)
}

func (a *Agent) openWeb() error {
	if !a.webWanted() {
		return nil
	}
	store := web.NewStore(web.Options{Retention: a.cfg.Web.Retention, MaxBytes: int64(a.cfg.Web.MaxBytes)})
	srv, err := web.NewServer(a.cfg.Web.Listen, store)
	if err != nil {
		return fmt.Errorf("web.listen: %w", err)
	}
	v := &localView{store: store, server: srv, served: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() { v.served <- srv.Serve() }()
	go v.refresh(a)
	a.local = v
	a.log.Info("web view", "url", "http://"+srv.Addr()+"/")
	return nil
}

// refresh feeds the store with histograms and counters until stopped.
func (v *localView) refresh(a *Agent) {
	defer close(v.done)
	t := time.NewTicker(webRefresh)
	defer t.Stop()
	for {
		v.readOnce(a)
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
	}
}

func (v *localView) readOnce(a *Agent) {
	now := time.Now()
	for _, h := range a.hooks {
		if r, err := h.Read(); err == nil {
			v.store.AddReadings(now, r)
		}
	}
	v.store.SetSelf(now, a.selfSource().selfCounters())
}

func (v *localView) profiles(batch []profilesink.Profile) {
	v.store.Send(context.Background(), batch)
}

func (v *localView) close() error {
	close(v.stop)
	<-v.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := v.server.Shutdown(ctx)
	if serr := <-v.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, v.store.Close())
}
