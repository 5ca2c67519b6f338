package profilesink

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
)

// benchBatch is one interval of 20 process groups of 500 stacks each.
func benchBatch(b *testing.B) []Profile {
	batch := make([]Profile, 20)
	for i := range batch {
		batch[i] = testProfile(b, "svc", testStart, 500)
	}
	return batch
}

func BenchmarkToOTLP(b *testing.B) {
	batch := benchBatch(b)
	var size int
	for b.Loop() {
		pd, err := toOTLP(batch)
		if err != nil {
			b.Fatal(err)
		}
		body, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	var gz bytes.Buffer
	for _, p := range batch {
		p.Pprof.Write(&gz)
	}
	b.ReportMetric(float64(size), "otlp_bytes")
	b.ReportMetric(float64(gz.Len()), "pprof_gz_bytes")
}

func BenchmarkQueuedOffer(b *testing.B) {
	s := &fakeSink{gate: make(chan struct{})} // a stuck backend: the worst case for Offer
	q, err := NewQueued(s, DefaultQueueConfig, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_ = q.Close(ctx)
	}()
	batch := []Profile{{Service: "x"}}
	for b.Loop() {
		q.Offer(batch)
	}
}
