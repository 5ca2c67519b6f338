package web

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromiumFlags run Debian's Chromium headless as root on a machine with
// no network beyond loopback: without the background-networking flags it
// keeps trying (and failing) to reach its vendor's services.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--virtual-time-budget=8000",
}

// runChromium runs one headless Chromium with its own profile directory
// and returns its standard output.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append(append([]string{"--user-data-dir=" + t.TempDir()}, chromiumFlags...), args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// The page, as a browser renders it: a flame graph naming the store's hot
// function and a histogram chart with bars. Set VIGIL_WEB_SCREENSHOT to a
// .png path to also take a 1280x900 screenshot (a second browser run).
func TestBrowserRendersFlameGraphAndHistograms(t *testing.T) {
	if testing.Short() {
		t.Skip("headless Chromium takes seconds: skipped with -short")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	srv := startServer(t, fedStore(t))
	url := "http://" + srv.Addr() + "/"

	dom := runChromium(t, bin, "--dump-dom", url)
	frame := regexp.MustCompile(`<g class="frame[^"]*"[^>]*data-name="hot_alpha" data-value="(\d+)"`).FindStringSubmatch(dom)
	if frame == nil || frame[1] != "100" {
		t.Errorf("no flame graph frame for hot_alpha with 100 samples in the rendered page (%d bytes):\n%s", len(dom), excerpt(dom, "flame"))
	}
	if !strings.Contains(dom, `data-total="150"`) {
		t.Errorf("flame graph total is not the 150 samples of the store")
	}
	chart := regexp.MustCompile(`<svg class="hist-chart"[^>]*data-metric="vigil.read.duration"[^>]*data-count="(\d+)" data-buckets="(\d+)"`).FindStringSubmatch(dom)
	if chart == nil {
		t.Fatalf("no histogram chart for vigil.read.duration:\n%s", excerpt(dom, "hists"))
	}
	buckets, _ := strconv.Atoi(chart[2])
	bars := strings.Count(dom, `<rect class="bar"`)
	if chart[1] != "600" || buckets < 5 || bars != buckets {
		t.Errorf("histogram chart: count %s, %d occupied buckets, %d bars drawn; want 600 values over 5+ buckets, one bar each", chart[1], buckets, bars)
	}
	for _, p := range []string{"p50", "p90", "p99"} {
		if !strings.Contains(dom, `class="pct" `) || !strings.Contains(dom, `data-p="`+p+`"`) {
			t.Errorf("no %s marker on the chart", p)
		}
	}
	if !strings.Contains(dom, `data-counter="vigil.samples"`) {
		t.Error("health counters missing")
	}
	if strings.Contains(dom, "cannot reach vigil") {
		t.Error("the page reported an API failure")
	}

	// A bookmarked view: one service, zoomed into its main, searching.
	dom = runChromium(t, bin, "--dump-dom", url+"#service=api&search=alpha&zoom=all&zoom=api&zoom=main")
	if !strings.Contains(dom, `data-focus="main"`) || !regexp.MustCompile(`<g class="frame match"[^>]*data-name="hot_alpha"`).MatchString(dom) {
		t.Errorf("bookmarked zoom and search not applied:\n%s", excerpt(dom, "flame"))
	}
	if strings.Contains(dom, `data-name="hot_beta"`) || !strings.Contains(dom, `data-total="120"`) {
		t.Errorf("service=api still shows other services' frames")
	}
	if !strings.Contains(dom, "1 frame matches “alpha”: 83.3% of the samples in view.") {
		t.Errorf("search summary missing:\n%s", excerpt(dom, "flame-detail"))
	}

	if shot := os.Getenv("VIGIL_WEB_SCREENSHOT"); shot != "" {
		runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,"+envOr("VIGIL_WEB_SCREENSHOT_HEIGHT", "900"), "--hide-scrollbars", url)
		if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s not written: %v", shot, err)
		}
	}
}

// excerpt returns the part of a page around an element id, for failure
// messages that stay readable.
func excerpt(dom, id string) string {
	i := strings.Index(dom, `id="`+id+`"`)
	if i < 0 {
		return dom[:min(len(dom), 2000)]
	}
	return dom[i:min(len(dom), i+2000)]
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
