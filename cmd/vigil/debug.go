package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// serveDebugPprof exposes vigil's own Go profiles (heap, CPU, goroutines) on
// addr, for investigating vigil itself: VIGIL_DEBUG_PPROF=127.0.0.1:6060.
func serveDebugPprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			slog.Warn("debug pprof endpoint stopped", "component", "agent", "addr", addr, "err", err)
		}
	}()
	slog.Info("serving vigil's own profiles", "component", "agent", "url", "http://"+addr+"/debug/pprof/")
}
