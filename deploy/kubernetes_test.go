package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/vigil-ebpf/vigil/config"
)

// decodeStrict decodes one YAML manifest into a typed Kubernetes object;
// unknown fields and duplicate keys are errors, as with kubectl
// --validate=strict.
func decodeStrict(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("\n---")) {
		t.Fatalf("%s: one object per file", path)
	}
	if err := strictManifest(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// strictManifest converts YAML to JSON (duplicate keys are errors) and
// decodes it twice: with encoding/json refusing unknown fields, and with the
// API server's own decoder, which also matches field names case-sensitively
// (encoding/json would accept hostPid for hostPID).
func strictManifest(data []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(js, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func typeMeta(t *testing.T, path, apiVersion, kind, gotVersion, gotKind string) {
	t.Helper()
	if gotVersion != apiVersion || gotKind != kind {
		t.Errorf("%s: %s/%s, want %s/%s", path, gotVersion, gotKind, apiVersion, kind)
	}
}

type manifests struct {
	ns  corev1.Namespace
	sa  corev1.ServiceAccount
	cm  corev1.ConfigMap
	ds  appsv1.DaemonSet
	pod *corev1.PodSpec
	c   *corev1.Container
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	decodeStrict(t, "kubernetes/namespace.yaml", &m.ns)
	typeMeta(t, "namespace.yaml", "v1", "Namespace", m.ns.APIVersion, m.ns.Kind)
	decodeStrict(t, "kubernetes/serviceaccount.yaml", &m.sa)
	typeMeta(t, "serviceaccount.yaml", "v1", "ServiceAccount", m.sa.APIVersion, m.sa.Kind)
	decodeStrict(t, "kubernetes/configmap.yaml", &m.cm)
	typeMeta(t, "configmap.yaml", "v1", "ConfigMap", m.cm.APIVersion, m.cm.Kind)
	decodeStrict(t, "kubernetes/daemonset.yaml", &m.ds)
	typeMeta(t, "daemonset.yaml", "apps/v1", "DaemonSet", m.ds.APIVersion, m.ds.Kind)
	m.pod = &m.ds.Spec.Template.Spec
	if len(m.pod.Containers) != 1 {
		t.Fatalf("DaemonSet has %d containers, want 1", len(m.pod.Containers))
	}
	m.c = &m.pod.Containers[0]
	return m
}

// Every file in the folder is one of the decoded manifests, so a new file
// can't escape the strict decoding.
func TestKubernetesFolderIsChecked(t *testing.T) {
	files, err := filepath.Glob("kubernetes/*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kubernetes/configmap.yaml", "kubernetes/daemonset.yaml", "kubernetes/namespace.yaml", "kubernetes/serviceaccount.yaml"}
	if !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
}

func TestKubernetesStrictDecodingCatchesTypos(t *testing.T) {
	data, err := os.ReadFile("kubernetes/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{"hostPID: true", "hostPid: true", "hostPid"},                      // wrong case
		{"readOnly: true", "readonly: true", "readonly"},                   // wrong case, nested
		{"hostPID: true", "hostPIDs: true", "hostPIDs"},                    // unknown
		{"hostPID: true", "hostPID: true\n      hostPID: true", "hostPID"}, // duplicate
	} {
		bad := strings.Replace(string(data), c.from, c.to, 1)
		var ds appsv1.DaemonSet
		if err := strictManifest([]byte(bad), &ds); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q instead of %q decoded: %v", c.to, c.from, err)
		}
	}
}

func TestKubernetesObjectsFitTogether(t *testing.T) {
	m := loadManifests(t)
	ns := m.ns.Name
	for what, got := range map[string]string{"ServiceAccount": m.sa.Namespace, "ConfigMap": m.cm.Namespace, "DaemonSet": m.ds.Namespace} {
		if got != ns {
			t.Errorf("%s in namespace %q, want %q", what, got, ns)
		}
	}
	if m.pod.ServiceAccountName != m.sa.Name {
		t.Errorf("DaemonSet runs as %q, ServiceAccount is %q", m.pod.ServiceAccountName, m.sa.Name)
	}
	if m.sa.AutomountServiceAccountToken == nil || *m.sa.AutomountServiceAccountToken ||
		m.pod.AutomountServiceAccountToken == nil || *m.pod.AutomountServiceAccountToken {
		t.Error("vigil never calls the API server: no service account token")
	}
	sel := m.ds.Spec.Selector.MatchLabels
	for k, v := range sel {
		if m.ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template", k, v)
		}
	}
	if m.ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Error("hostPID and host paths need the privileged Pod Security level on the namespace")
	}
}

func TestKubernetesPrivileges(t *testing.T) {
	m := loadManifests(t)
	if !m.pod.HostPID {
		t.Error("hostPID must be true: vigil reads /proc/<pid> of every process on the node")
	}
	if m.pod.HostNetwork || m.pod.HostIPC {
		t.Error("vigil needs neither the host network nor host IPC")
	}
	sc := m.c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("no securityContext.capabilities")
	}
	if sc.Privileged == nil || *sc.Privileged {
		t.Error("privileged must be false: capabilities instead")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true")
	}
	var added []string
	for _, c := range sc.Capabilities.Add {
		added = append(added, string(c))
	}
	slices.Sort(added)
	if !slices.Equal(added, sortedCaps()) {
		t.Errorf("capabilities added %v, want exactly %v", added, sortedCaps())
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("capabilities dropped %v, want [ALL]", sc.Capabilities.Drop)
	}
	if sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Error("the default AppArmor profile refuses reading /proc/<pid>/maps of host processes")
	}
}

// hostMounts are the host paths vigil needs in the container and why.
var hostMounts = map[string]string{
	"/sys/kernel/btf":     "kernel BTF for CO-RE",
	"/sys/kernel/tracing": "tracepoint ids and formats",
	"/tmp":                "JIT perf maps /tmp/perf-<pid>.map",
}

func TestKubernetesMounts(t *testing.T) {
	m := loadManifests(t)
	volumes := map[string]corev1.Volume{}
	for _, v := range m.pod.Volumes {
		volumes[v.Name] = v
	}
	seen := map[string]bool{}
	for _, vm := range m.c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Errorf("mount %s names no volume %q", vm.MountPath, vm.Name)
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("mount %s is writable: vigil writes nothing there", vm.MountPath)
		}
		switch {
		case v.HostPath != nil:
			if _, needed := hostMounts[v.HostPath.Path]; !needed {
				t.Errorf("host path %s is mounted but vigil does not need it", v.HostPath.Path)
			}
			if vm.MountPath != v.HostPath.Path {
				t.Errorf("host %s mounted at %s: vigil looks for it at the host's path", v.HostPath.Path, vm.MountPath)
			}
			seen[v.HostPath.Path] = true
		case v.ConfigMap != nil:
			if v.ConfigMap.Name != m.cm.Name || vm.MountPath != "/etc/vigil" {
				t.Errorf("config volume: ConfigMap %q at %s, want %q at /etc/vigil", v.ConfigMap.Name, vm.MountPath, m.cm.Name)
			}
			seen["config"] = true
		}
	}
	for path, why := range hostMounts {
		if !seen[path] {
			t.Errorf("host path %s (%s) is not mounted", path, why)
		}
	}
	if !seen["config"] {
		t.Error("the ConfigMap is not mounted")
	}
	if want := []string{"run", "--config", "/etc/vigil/vigil.yaml"}; !slices.Equal(m.c.Args, want) {
		t.Errorf("args %v, want %v", m.c.Args, want)
	}
}

func TestKubernetesDownwardAPI(t *testing.T) {
	m := loadManifests(t)
	defined := map[string]string{} // env name -> fieldPath
	var attrs string
	for _, e := range m.c.Env {
		for _, ref := range regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`).FindAllStringSubmatch(e.Value, -1) {
			if _, ok := defined[ref[1]]; !ok {
				t.Errorf("%s uses $(%s) before it is defined: Kubernetes leaves it unexpanded", e.Name, ref[1])
			}
		}
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			defined[e.Name] = e.ValueFrom.FieldRef.FieldPath
		} else {
			defined[e.Name] = ""
		}
		if e.Name == "OTEL_RESOURCE_ATTRIBUTES" {
			attrs = e.Value
		}
	}
	want := map[string]string{ // resource attribute -> downward API field
		"host.name":          "spec.nodeName",
		"k8s.node.name":      "spec.nodeName",
		"k8s.pod.name":       "metadata.name",
		"k8s.namespace.name": "metadata.namespace",
		"k8s.pod.uid":        "metadata.uid",
	}
	got := map[string]string{}
	for kv := range strings.SplitSeq(attrs, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if ref := regexp.MustCompile(`^\$\(([A-Z0-9_]+)\)$`).FindStringSubmatch(v); ref != nil {
			got[k] = defined[ref[1]]
		}
	}
	for attr, field := range want {
		if got[attr] != field {
			t.Errorf("OTEL_RESOURCE_ATTRIBUTES %s comes from %q, want the downward API field %s", attr, got[attr], field)
		}
	}
}

// The integrator's measurements of vigil run on a busy host.
const measuredStartRSS = 130 << 20

func TestKubernetesResources(t *testing.T) {
	m := loadManifests(t)
	r := m.c.Resources
	req, lim := r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
	if req.Value() < measuredStartRSS {
		t.Errorf("memory request %s is below the measured %d MiB at start", req.String(), measuredStartRSS>>20)
	}
	if lim.Cmp(req) <= 0 || lim.Value() < 2*measuredStartRSS {
		t.Errorf("memory limit %s leaves no room above the request %s (BPF maps are charged here too)", lim.String(), req.String())
	}
	if _, ok := r.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit throttles the drains and loses samples")
	}
	cpu := r.Requests[corev1.ResourceCPU]
	if cpu.Cmp(resource.MustParse("5m")) < 0 || cpu.Cmp(resource.MustParse("100m")) > 0 {
		t.Errorf("CPU request %s: measured ~0.5%% of a core at 99 Hz (5m), want 5m..100m", cpu.String())
	}
}

func TestKubernetesConfigMapIsValid(t *testing.T) {
	m := loadManifests(t)
	text, ok := m.cm.Data["vigil.yaml"]
	if !ok {
		t.Fatal("ConfigMap has no vigil.yaml")
	}
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Web.Enabled.On(true) {
		t.Error("a loopback web view in a pod is unreachable: web.enabled must be false")
	}
	if cfg.Sinks.OTLP.Endpoint == "" {
		t.Error("the DaemonSet's profiles go nowhere: set sinks.otlp.endpoint")
	}
}
