package config

import (
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listenAddr checks a host:port listen address. The host must be written
// out: ":7070" silently listens on every interface, which for a page naming
// every process of the host has to be a choice, spelled 0.0.0.0:7070.
func (c *checker) listenAddr(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.addf(path, "must be host:port, such as 127.0.0.1:7070 (got %q)", addr)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		c.addf(path, "port must be a number between 0 and 65535 (got %q)", port)
	}
	if host == "" {
		c.addf(path, "must name the host: 127.0.0.1%s for this machine only, or 0.0.0.0%s for every interface (got %q)", addr, addr, addr)
	}
}

// Loopback reports whether the web view listens on loopback only, so the
// agent can warn when it is exposed further.
func (w Web) Loopback() bool {
	host, _, err := net.SplitHostPort(w.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// httpURL checks an http or https URL with a host.
func (c *checker) httpURL(path, raw, example string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.addf(path, "must be a URL with an http or https scheme and a host, such as %s (got %q)", example, raw)
		return nil, false
	}
	if u.User != nil {
		c.addf(path, "must not carry credentials: use the sink's auth keys (got %s)", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		c.addf(path, "must not have a query or fragment (got %q)", raw)
	}
	return u, true
}

func (c *checker) otlp(o OTLP) {
	if o.Endpoint != "" {
		u, ok := c.httpURL("sinks.otlp.endpoint", o.Endpoint, "http://127.0.0.1:4317")
		if ok && u.Scheme == "https" && o.Insecure {
			c.addf("sinks.otlp.insecure", "true contradicts the https scheme of sinks.otlp.endpoint")
		}
	}
	c.oneOf("sinks.otlp.protocol", o.Protocol, ProtocolGRPC, ProtocolHTTPProtobuf)
	c.headers("sinks.otlp.headers", o.Headers)
	c.durRange("sinks.otlp.timeout", o.Timeout, time.Millisecond, 5*time.Minute)
}

// headerName is an HTTP field name (RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (c *checker) headers(path string, h map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if !headerName.MatchString(k) {
			c.addf(path+"."+k, "is not a valid HTTP header name")
		}
		if strings.ContainsAny(h[k], "\r\n\x00") {
			c.addf(path+"."+k, "value must not contain line breaks or NUL")
		}
	}
}

// labelName is what Pyroscope accepts as a label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.]*$`)

func (c *checker) pyroscope(p Pyroscope) {
	if p.URL != "" {
		c.httpURL("sinks.pyroscope.url", p.URL, "http://pyroscope:4040")
	} else if p.TenantID != "" || p.BasicAuth != (BasicAuth{}) || p.BearerToken != "" || len(p.Labels) > 0 {
		c.addf("sinks.pyroscope.url", "is empty (sink off) but the sink's tenant, auth or labels are set")
	}
	c.oneOf("sinks.pyroscope.api", p.API, PyroscopeIngest, PyroscopePush)
	if p.BasicAuth != (BasicAuth{}) && p.BearerToken != "" {
		c.addf("sinks.pyroscope.bearer_token", "set together with sinks.pyroscope.basic_auth: choose one")
	}
	if p.BasicAuth.Password != "" && p.BasicAuth.Username == "" {
		c.addf("sinks.pyroscope.basic_auth.username", "must be set when a password is")
	}
	if strings.ContainsAny(p.BearerToken, " \t\r\n") {
		c.addf("sinks.pyroscope.bearer_token", "must not contain spaces or line breaks (a trailing newline from a file?)")
	}
	if strings.ContainsAny(p.TenantID, "\r\n\x00") {
		c.addf("sinks.pyroscope.tenant_id", "must not contain line breaks or NUL")
	}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") {
			c.addf("sinks.pyroscope.labels."+k, "is not a valid label name (letters, digits, _ and ., not starting with a digit or __)")
		}
	}
}
