package config

import (
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// A configuration written out as YAML (for a --print-config, say) reads
// back to the same values, byte sizes and switches included.
func TestMarshalRoundTrips(t *testing.T) {
	cfg := Default()
	cfg.Sinks.Directory.MaxBytes = 1536 * KiB
	cfg.Web.Enabled = SwitchOff
	cfg.Profiler.Interval = 90 * time.Second
	cfg.Sinks.Pyroscope.Labels = map[string]string{"version": "1.2", "n": "007"}
	for _, c := range []Config{Default(), cfg} {
		data, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(data)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("round trip changed the config:\n%s\ngot  %+v\nwant %+v", data, back, c)
		}
	}
}
