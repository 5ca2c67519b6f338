package profilesink

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
)

const maxResponseBody = 64 << 10 // a receiver's answer is small; never read more

type otlpHTTP struct {
	url     string
	headers map[string]string
	client  *http.Client
}

func newOTLPHTTP(cfg OTLPConfig) (*otlpHTTP, error) {
	u, err := profilesURL(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		return nil, err
	}
	return &otlpHTTP{url: u, headers: cfg.Headers, client: &http.Client{Timeout: cfg.Timeout}}, nil
}

// profilesURL adds a scheme when there is none and the profiles path when
// the URL does not already end with it.
func profilesURL(endpoint string, plaintext bool) (string, error) {
	if endpoint == "" {
		return "", errors.New("endpoint is empty")
	}
	if !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if plaintext {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("endpoint %q: want http(s)://host:port", endpoint)
	}
	if !strings.HasSuffix(u.Path, ProfilesPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + ProfilesPath
	}
	return u.String(), nil
}

func (h *otlpHTTP) export(ctx context.Context, req pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	resp := pprofileotlp.NewExportResponse()
	body, err := req.MarshalProto()
	if err != nil {
		return resp, Permanent(fmt.Errorf("encoding request: %w", err))
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write(body)
	zw.Close()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, &zbuf)
	if err != nil {
		return resp, Permanent(err)
	}
	for k, v := range h.headers {
		hreq.Header.Set(k, v)
	}
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "gzip")
	hresp, err := h.client.Do(hreq)
	if err != nil {
		return resp, err
	}
	defer hresp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBody))
	if hresp.StatusCode/100 == 2 {
		_ = resp.UnmarshalProto(b) // an empty or odd body still means accepted
		return resp, nil
	}
	return resp, httpStatusError(hresp.StatusCode, b)
}

// httpStatusError follows the OTLP/HTTP rules: 429, 502, 503 and 504 are
// worth retrying, any other refusal is not.
func httpStatusError(code int, body []byte) error {
	err := fmt.Errorf("HTTP %d %s: %s", code, http.StatusText(code), bytes.TrimSpace(truncate(body, 256)))
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return err
	case http.StatusNotFound:
		return Permanent(fmt.Errorf("receiver takes no profiles at %s (does it run with --feature-gates=service.profilesSupport and a profiles pipeline?): %w", ProfilesPath, err))
	default:
		return Permanent(err)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
