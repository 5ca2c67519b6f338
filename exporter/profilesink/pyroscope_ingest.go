package profilesink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/google/pprof/profile"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// ingestParallel bounds the /ingest requests in flight per batch: one
// request per process group, so a host with hundreds of groups and a
// distant server would otherwise need longer than an interval to send one.
const ingestParallel = 4

// ingestBatch sends each profile of batch as its own /ingest request. A
// batch that failed part-way is retried whole by the queue: profiles the
// server already took (or refused for good) are not sent twice.
func (p *Pyroscope) ingestBatch(ctx context.Context, batch []Profile) error {
	errs := make([]error, len(batch))
	todo := p.done.pending(batch)
	sem := make(chan struct{}, ingestParallel)
	var wg sync.WaitGroup
	for _, i := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = p.ingest(ctx, &batch[i])
		}()
	}
	wg.Wait()
	return p.settle(batch, todo, errs)
}

// settle books the outcome of one try. Refused profiles are dropped (the
// queue counts them); the first retryable error makes the queue retry the
// rest.
func (p *Pyroscope) settle(batch []Profile, tried []int, errs []error) error {
	var retry, refused error
	for _, i := range tried {
		switch err := errs[i]; {
		case err == nil:
			p.done.mark(batch[i].Pprof, false)
		case IsPermanent(err):
			p.done.mark(batch[i].Pprof, true)
			refused = cmp(refused, err)
		default:
			retry = cmp(retry, err)
		}
	}
	if retry != nil {
		return fmt.Errorf("sink %s: %d of %d profiles not delivered: %w", p.Name(), len(batch)-p.done.count(), len(batch), retry)
	}
	n := p.done.rejected()
	p.done.reset()
	if n == 0 {
		return nil
	}
	return fmt.Errorf("sink %s: %w", p.Name(), Rejected(n, refused))
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// ingest sends one profile: POST /ingest?name=app{k=v}&from&until&format=pprof
// with the gzipped pprof as the body, or, for a kind with a sample type
// configuration (off-CPU), without format and with both in a multipart form.
func (p *Pyroscope) ingest(ctx context.Context, pr *Profile) error {
	if pr.Pprof == nil {
		return Permanent(fmt.Errorf("profile of %q has no pprof", pr.Service))
	}
	typ, err := pyroscopeTypeOf(pr)
	if err != nil {
		return Permanent(err)
	}
	body, contentType, err := ingestBody(pr, typ)
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/ingest?"+ingestQuery(pr, p.labels, typ), body)
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return ingestStatusError(resp.StatusCode, b)
}

// ingestStatusError: Pyroscope answers 400 for a bad parameter or name, 413
// for a body over its limit and 422 for a profile it cannot parse; sending
// the same again cannot help. Anything else (5xx, 429, and auth failures a
// fixed proxy or secret can cure) is retried.
func ingestStatusError(code int, body []byte) error {
	err := fmt.Errorf("/ingest: HTTP %d %s: %s", code, http.StatusText(code), bytes.TrimSpace(truncate(body, 256)))
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return Permanent(err)
	}
	return err
}

// ingestQuery is the query string of one profile. Times are Unix seconds,
// the unit every Pyroscope version reads.
func ingestQuery(pr *Profile, extra []*typesv1.LabelPair, typ pyroscopeType) string {
	q := make([]string, 0, 6)
	add := func(k, v string) { q = append(q, k+"="+queryEscape(v)) }
	add("name", ingestName(pr, extra, typ))
	add("from", strconv.FormatInt(pr.Start.Unix(), 10))
	add("until", strconv.FormatInt(max(pr.End.Unix(), pr.Start.Unix()+1), 10))
	if typ.sampleTypeConfig == "" {
		// A multipart form carries its own format; the server refuses a
		// format parameter with it.
		add("format", "pprof")
		if hz := sampleRate(pr); hz != "" {
			add("sampleRate", hz)
		}
	}
	add("spyName", typ.spyName)
	return strings.Join(q, "&")
}

// ingestName is app{k=v,...}: the service name (the application in
// Pyroscope 0.x, service_name in 1.x) and the same labels the push API
// sends, less the ones the name itself or the server supplies.
func ingestName(pr *Profile, extra []*typesv1.LabelPair, typ pyroscopeType) string {
	var b strings.Builder
	b.WriteString(appName(serviceName(pr)) + typ.ingestSuffix)
	b.WriteByte('{')
	first := true
	for _, l := range seriesLabels(pr, extra, typ.pushName) {
		if l.Name == "__name__" || l.Name == "__delta__" || l.Name == "service_name" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name + "=" + nameValue(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// appName keeps what an application name may hold, [a-zA-Z0-9_.-],
// replacing the rest with _.
func appName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
}

// nameValue keeps a label value from ending the name's {k=v,...} list
// early: the server's parser stops a value at ',' or '}' and trims spaces.
func nameValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == ',' || r == '}' || r == '{' {
			return '_'
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// queryEscape escapes like url.QueryEscape but writes spaces as %20, which
// every server decodes the same way.
func queryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// delivered remembers which profiles of the batch being retried are
// finished (taken, or refused for good), keyed by their pprof. It only ever
// holds one batch's profiles.
type delivered struct {
	mu   sync.Mutex
	done map[*profile.Profile]bool // true: refused
}

// pending lists the indexes of batch still to send, forgetting profiles of
// any other batch (one that was dropped meanwhile).
func (d *delivered) pending(batch []Profile) []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := make(map[*profile.Profile]bool, len(d.done))
	var todo []int
	for i := range batch {
		if refused, ok := d.done[batch[i].Pprof]; ok {
			keep[batch[i].Pprof] = refused
			continue
		}
		todo = append(todo, i)
	}
	d.done = keep
	return todo
}

func (d *delivered) mark(p *profile.Profile, refused bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		d.done = map[*profile.Profile]bool{}
	}
	d.done[p] = refused
}

func (d *delivered) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.done)
}

func (d *delivered) rejected() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, refused := range d.done {
		if refused {
			n++
		}
	}
	return n
}

func (d *delivered) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = nil
}

// ingestBody is the gzipped pprof, alone (format=pprof) or, for a kind
// with a sample type configuration, in a multipart form with it.
func ingestBody(pr *Profile, typ pyroscopeType) (io.Reader, string, error) {
	var prof bytes.Buffer
	if err := pr.Pprof.Write(&prof); err != nil {
		return nil, "", fmt.Errorf("encoding profile of %q: %w", pr.Service, err)
	}
	if typ.sampleTypeConfig == "" {
		return &prof, "application/octet-stream", nil
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for _, part := range []struct {
		field, file string
		data        []byte
	}{
		{"profile", "profile.pprof", prof.Bytes()},
		{"sample_type_config", "sample_type_config.json", []byte(typ.sampleTypeConfig)},
	} {
		w, err := mw.CreateFormFile(part.field, part.file)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(part.data); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return &form, mw.FormDataContentType(), nil
}
