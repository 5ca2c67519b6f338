package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

func (h *handler) processes(w http.ResponseWriter, r *http.Request) {
	from, kind, err := h.selection(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	entries := ofKind(h.store.window("", from), kind)
	h.writeJSON(w, processesView{From: from, To: h.store.now(), Kind: kind, Unit: unitOf(kind), Processes: processesOf(entries)})
}

func (h *handler) flamegraph(w http.ResponseWriter, r *http.Request) {
	from, kind, err := h.selection(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	svc := r.URL.Query().Get("service")
	entries, gen := h.store.windowGen(svc, from)
	entries = ofKind(entries, kind)
	root := h.flames.get(keyOf(kind, svc, gen, entries), entries)
	h.writeJSON(w, flameView{Kind: kind, Service: svc, From: from, To: h.store.now(), Profiles: len(entries),
		Unit: unitOf(kind), Root: root})
}

func (h *handler) profile(w http.ResponseWriter, r *http.Request) {
	from, kind, err := h.selection(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	svc := r.URL.Query().Get("service")
	p, skipped, err := mergeProfiles(ofKind(h.store.window(svc, from), kind))
	if errors.Is(err, errNoProfiles) {
		http.Error(w, noProfilesMessage(kind, svc), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		http.Error(w, "encoding the merged profile: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if skipped > 0 {
		w.Header().Set("X-Vigil-Skipped-Profiles", strconv.Itoa(skipped))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	name := "vigil-cpu.pb.gz"
	if kind == profilesink.KindOffCPU {
		name = "vigil-offcpu.pb.gz"
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = w.Write(buf.Bytes())
}

func noProfilesMessage(kind, svc string) string {
	what := "profiles"
	if kind == profilesink.KindOffCPU {
		what = "off-CPU profiles (profiler.off_cpu.enabled makes them)"
	}
	if svc == "" {
		return "no " + what + " in the window yet: the first arrives one profile interval after start"
	}
	return fmt.Sprintf("no %s of service %q in the window", what, svc)
}

// selection parses the parameters every profile view takes: since, and
// kind (cpu when absent, or off_cpu).
func (h *handler) selection(r *http.Request) (time.Time, string, error) {
	from, err := h.since(r)
	if err != nil {
		return from, "", err
	}
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", profilesink.KindCPU:
		return from, profilesink.KindCPU, nil
	case profilesink.KindOffCPU:
		return from, kind, nil
	default:
		return from, "", fmt.Errorf("bad kind %q: want %s or %s", kind, profilesink.KindCPU, profilesink.KindOffCPU)
	}
}

// unitOf is the unit of a kind's values in the views.
func unitOf(kind string) string {
	if kind == profilesink.KindOffCPU {
		return "nanoseconds"
	}
	return "samples"
}

func (h *handler) histograms(w http.ResponseWriter, r *http.Request) {
	s := h.store
	s.mu.Lock()
	v := s.hists.view()
	s.mu.Unlock()
	h.writeJSON(w, v)
}

func (h *handler) self(w http.ResponseWriter, r *http.Request) {
	s := h.store
	s.mu.Lock()
	s.pruneProfiles()
	v := selfView{Time: s.self.at, Counters: s.self.rows(), Web: s.stats()}
	s.mu.Unlock()
	h.writeJSON(w, v)
}

// since parses the since parameter: a duration back from now ("15m"), an
// RFC 3339 time, or Unix seconds. Absent, the whole retention window.
func (h *handler) since(r *http.Request) (time.Time, error) {
	now := h.store.now()
	raw := r.URL.Query().Get("since")
	if raw == "" {
		return now.Add(-h.store.opts.Retention), nil
	}
	if d, err := time.ParseDuration(raw); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, raw); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseInt(raw, 10, 64); err == nil && sec > 0 {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("bad since %q: want a positive duration such as 15m, an RFC 3339 time or Unix seconds", raw)
}
