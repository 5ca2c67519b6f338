package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the web server. The view is local and its answers small; a
// merged profile download of a full hour is the slowest, well under
// writeTimeout on this kind of machine.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
)

// Server serves the web view of a Store.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// NewServer listens on addr right away, so a port already taken is an
// error at start-up that names the address, not a failure later.
func NewServer(addr string, s *Store) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web view: listening on %s: %w", addr, err)
	}
	log := slog.Default().With("component", "web")
	h := &handler{store: s, loopback: isLoopback(ln.Addr()), log: log}
	srv := &http.Server{
		Handler:           h.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return &Server{ln: ln, srv: srv, log: log}, nil
}

// Addr is the address actually listened on (with the port chosen by the
// kernel when addr asked for port 0).
func (srv *Server) Addr() string { return srv.ln.Addr().String() }

// Serve answers requests until Shutdown. It returns nil after Shutdown.
func (srv *Server) Serve() error {
	srv.log.Info("web view serving", "url", "http://"+srv.Addr()+"/")
	if err := srv.srv.Serve(srv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web view on %s: %w", srv.Addr(), err)
	}
	return nil
}

// Shutdown stops listening and waits for requests in flight until ctx ends.
// It also closes the listener of a server that never served.
func (srv *Server) Shutdown(ctx context.Context) error {
	err := srv.srv.Shutdown(ctx)
	if cerr := srv.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shutting down the web view: %w", err)
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
