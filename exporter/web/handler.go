package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

//go:embed static
var staticFiles embed.FS

// contentSecurityPolicy allows the page's own scripts, styles and API and
// nothing else: no inline code, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type handler struct {
	store    *Store
	loopback bool
	log      *slog.Logger
	flames   flameCache
}

func (h *handler) routes() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", h.page)
	mux.HandleFunc("GET /api/processes", h.processes)
	mux.HandleFunc("GET /api/flamegraph", h.flamegraph)
	mux.HandleFunc("GET /api/profile.pb.gz", h.profile)
	mux.HandleFunc("GET /api/histograms", h.histograms)
	mux.HandleFunc("GET /api/self", h.self)
	return h.guard(mux)
}

// guard applies what every answer needs: only GET (and HEAD), security
// headers, and, on a loopback address, a Host check so a web page on
// another origin can't reach the view by rebinding its DNS name to
// 127.0.0.1. No CORS header is ever sent.
func (h *handler) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the web view is read-only", http.StatusMethodNotAllowed)
			return
		}
		if h.loopback && !loopbackHost(r.Host) {
			http.Error(w, "forbidden host "+r.Host+": the web view answers to localhost and loopback addresses", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine's loopback.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	b, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "page missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (h *handler) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		h.log.Debug("writing answer", "error", err)
	}
}
