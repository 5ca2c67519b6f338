package web

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/pprof/profile"
)

// errNoProfiles means the window holds nothing to merge.
var errNoProfiles = errors.New("no profiles in the window")

// ServiceLabel is the sample label naming each sample's service in the
// merged download, so `go tool pprof -tagfocus service=...` can split it.
const ServiceLabel = "service"

// mergeProfiles merges the entries into one pprof. Each service is merged
// on its own and labelled, then the services are merged together. Profiles
// whose sample types differ from the first one's can't be merged with it
// and are left out; skipped says how many.
func mergeProfiles(entries []entry) (p *profile.Profile, skipped int, err error) {
	if len(entries) == 0 {
		return nil, 0, errNoProfiles
	}
	var first *profile.Profile
	byService := map[string][]*profile.Profile{}
	for i := range entries {
		e := &entries[i]
		pp, err := e.profile()
		if err != nil {
			return nil, skipped, fmt.Errorf("decoding a retained profile of service %q: %w", e.p.Service, err)
		}
		if first == nil {
			first = pp
		}
		if !compatible(first, pp) {
			skipped++
			continue
		}
		byService[e.p.Service] = append(byService[e.p.Service], pp)
	}
	merged := make([]*profile.Profile, 0, len(byService))
	for _, svc := range slices.Sorted(maps.Keys(byService)) {
		m, err := profile.Merge(byService[svc])
		if err != nil {
			return nil, skipped, fmt.Errorf("merging profiles of service %q: %w", svc, err)
		}
		labelSamples(m, svc)
		merged = append(merged, m)
	}
	p, err = profile.Merge(merged)
	if err != nil {
		return nil, skipped, fmt.Errorf("merging services: %w", err)
	}
	return p, skipped, nil
}

// compatible reports whether a and b have the same value layout, the
// condition for profile.Merge.
func compatible(a, b *profile.Profile) bool {
	if !sameType(a.PeriodType, b.PeriodType) || len(a.SampleType) != len(b.SampleType) {
		return false
	}
	for i := range a.SampleType {
		if !sameType(a.SampleType[i], b.SampleType[i]) {
			return false
		}
	}
	return true
}

func sameType(a, b *profile.ValueType) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && a.Unit == b.Unit
}

// labelSamples sets the service label on every sample of m, a merge result
// that this package owns.
func labelSamples(m *profile.Profile, service string) {
	for _, s := range m.Sample {
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		s.Label[ServiceLabel] = []string{service}
	}
}
