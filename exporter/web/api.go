package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func (h *handler) processes(w http.ResponseWriter, r *http.Request) {
	from, err := h.since(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	entries := h.store.window("", from)
	h.writeJSON(w, processesView{From: from, To: h.store.now(), Processes: processesOf(entries)})
}

func (h *handler) flamegraph(w http.ResponseWriter, r *http.Request) {
	from, err := h.since(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	svc := r.URL.Query().Get("service")
	entries, gen := h.store.windowGen(svc, from)
	root := h.flames.get(keyOf(svc, gen, entries), entries)
	h.writeJSON(w, flameView{Service: svc, From: from, To: h.store.now(), Profiles: len(entries),
		Unit: "samples", Root: root})
}

func (h *handler) profile(w http.ResponseWriter, r *http.Request) {
	from, err := h.since(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	svc := r.URL.Query().Get("service")
	p, skipped, err := mergeProfiles(h.store.window(svc, from))
	if errors.Is(err, errNoProfiles) {
		http.Error(w, noProfilesMessage(svc), http.StatusNotFound)
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
	w.Header().Set("Content-Disposition", `attachment; filename="vigil-cpu.pb.gz"`)
	_, _ = w.Write(buf.Bytes())
}

func noProfilesMessage(svc string) string {
	if svc == "" {
		return "no profiles in the window yet: the first arrives one profile interval after start"
	}
	return fmt.Sprintf("no profiles of service %q in the window", svc)
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
