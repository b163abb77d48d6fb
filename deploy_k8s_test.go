package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ssh-burn/chat/internal/ops"
)

// The Kubernetes manifests are checked the way the API server would read
// them (every document decoded strictly into its API type: a misspelt or
// misplaced field is an error, not a silently ignored line), and then for
// what they must mean for this server: probes on the real paths and ports,
// a grace period that outlasts the drain, resources that hold the session
// cap, hardened pods, and a Redis only the chat can reach.

const k8sDir = "deploy/k8s"

// What an idle session costs the server, measured with cmd/chatload
// (BENCHMARKS.md), and the server's default session cap per CPU: the
// Deployment's resources must hold the sessions it allows.
const (
	idleSessionBytes   = 140 << 10
	idleSessionCPUPerS = 70 * time.Microsecond // CPU time per second
	sessionsPerCPU     = 5000
)

// The server's default drain timeout (-drain-timeout).
const defaultDrainTimeout = 10 * time.Second

// The labels that set each kind of pod apart.
var (
	chatPodLabels  = map[string]string{"app.kubernetes.io/name": "chat"}
	redisPodLabels = map[string]string{"app.kubernetes.io/name": "redis"}
)

// k8sTypes maps apiVersion/kind to the API type a document decodes into.
// A kind not listed here is an error: the test would not know what it
// means.
var k8sTypes = map[string]func() metav1.Object{
	"v1/Namespace":                       func() metav1.Object { return new(corev1.Namespace) },
	"v1/ConfigMap":                       func() metav1.Object { return new(corev1.ConfigMap) },
	"v1/Service":                         func() metav1.Object { return new(corev1.Service) },
	"apps/v1/Deployment":                 func() metav1.Object { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":      func() metav1.Object { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy": func() metav1.Object { return new(networkingv1.NetworkPolicy) },
}

// kustomization is the part of kustomization.yaml the manifests rely on;
// decoded strictly, so anything else in it is noticed.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images"`
}

// k8sManifests is everything deploy/k8s deploys.
type k8sManifests struct {
	kustomization kustomization
	objects       map[string]metav1.Object // by "Kind/name"
}

// loadK8s decodes kustomization.yaml and every resource it lists, and
// checks that it lists every manifest in the directory.
func loadK8s(t *testing.T) *k8sManifests {
	t.Helper()
	m := &k8sManifests{objects: map[string]metav1.Object{}}
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &m.kustomization); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	k := m.kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			onDisk = append(onDisk, base)
		}
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(listed, onDisk) {
		t.Fatalf("kustomization.yaml lists %v, the directory holds %v: every manifest must be deployed, and only those", listed, onDisk)
	}
	for _, file := range k.Resources {
		m.decodeFile(t, file)
	}
	return m
}

// decodeFile decodes each YAML document of file into its API type.
func (m *k8sManifests) decodeFile(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sDir, file))
	if err != nil {
		t.Fatal(err)
	}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil && string(bytes.TrimSpace(j)) == "null" {
			continue // only comments
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s, document %d: %v", file, i, err)
		}
		newObject, ok := k8sTypes[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			t.Fatalf("%s, document %d: unexpected %s %s", file, i, tm.APIVersion, tm.Kind)
		}
		obj := newObject()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s, document %d (%s): %v", file, i, tm.Kind, err)
		}
		if obj.GetName() == "" {
			t.Fatalf("%s, document %d: %s without a name", file, i, tm.Kind)
		}
		if obj.GetNamespace() != "" {
			t.Errorf("%s: %s %s names namespace %q; kustomization.yaml sets it", file, tm.Kind, obj.GetName(), obj.GetNamespace())
		}
		key := tm.Kind + "/" + obj.GetName()
		if _, dup := m.objects[key]; dup {
			t.Fatalf("%s: %s defined twice", file, key)
		}
		m.objects[key] = obj
	}
}

// k8sObject returns the object of that kind and name, or fails.
func k8sObject[T any, P interface {
	*T
	metav1.Object
}](t *testing.T, m *k8sManifests, kind, name string) P {
	t.Helper()
	obj, ok := m.objects[kind+"/"+name]
	if !ok {
		t.Fatalf("deploy/k8s has no %s %s", kind, name)
	}
	typed, ok := obj.(P)
	if !ok {
		t.Fatalf("%s %s is a %T", kind, name, obj)
	}
	return typed
}

// k8sObjects returns every object of T's kind.
func k8sObjects[T any, P interface {
	*T
	metav1.Object
}](m *k8sManifests) []P {
	var all []P
	for _, key := range slices.Sorted(maps.Keys(m.objects)) {
		if typed, ok := m.objects[key].(P); ok {
			all = append(all, typed)
		}
	}
	return all
}

func TestDeployK8sManifestsDecodeIntoTheirAPITypes(t *testing.T) {
	m := loadK8s(t)
	want := []string{
		"ConfigMap/redis-config",
		"Deployment/chat",
		"Deployment/redis",
		"Namespace/chat",
		"NetworkPolicy/chat",
		"NetworkPolicy/default-deny",
		"NetworkPolicy/redis",
		"PodDisruptionBudget/chat",
		"Service/chat",
		"Service/chat-metrics",
		"Service/redis",
	}
	if got := slices.Sorted(maps.Keys(m.objects)); !slices.Equal(got, want) {
		t.Errorf("deploy/k8s defines %v, want %v", got, want)
	}
	ns := k8sObject[corev1.Namespace](t, m, "Namespace", m.kustomization.Namespace)
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces the %q pod security standard, want restricted", ns.Name, got)
	}
}

// chatContainer returns the chat Deployment and its one container.
func chatContainer(t *testing.T, m *k8sManifests) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := k8sObject[appsv1.Deployment](t, m, "Deployment", "chat")
	return d, onlyContainer(t, d)
}

func onlyContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", d.Name, n)
	}
	if n := len(d.Spec.Template.Spec.InitContainers); n != 0 {
		t.Fatalf("Deployment %s has %d init containers, want none", d.Name, n)
	}
	return &d.Spec.Template.Spec.Containers[0]
}

// envValue returns the literal value of the container's variable name, and
// whether it is set.
func envValue(t *testing.T, c *corev1.Container, name string) (string, bool) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			if e.ValueFrom != nil {
				t.Fatalf("container %s: %s comes from %+v, want a literal value", c.Name, name, e.ValueFrom)
			}
			return e.Value, true
		}
	}
	return "", false
}

func mustEnv(t *testing.T, c *corev1.Container, name string) string {
	t.Helper()
	v, ok := envValue(t, c, name)
	if !ok || v == "" {
		t.Fatalf("container %s does not set %s", c.Name, name)
	}
	return v
}

// listenPort is the port of a listen address such as ":2222".
func listenPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		t.Fatalf("listen address %q: port %q", addr, port)
	}
	return int32(n)
}

// containerPort resolves a probe's or Service's port, by number or by the
// name of one of the container's ports.
func containerPort(t *testing.T, c *corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, port.StrVal)
	return 0
}

// selects reports whether sel picks pods carrying podLabels.
func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(podLabels))
}

// selectsOnly reports whether sel picks the pods carrying podLabels and
// not pods that differ from them in their name label alone.
func selectsOnly(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	other := maps.Clone(podLabels)
	other["app.kubernetes.io/name"] = "something-else"
	return selects(t, sel, podLabels) && !selects(t, sel, other)
}

func TestDeployK8sChatProbesAndPortsMatchItsListeners(t *testing.T) {
	m := loadK8s(t)
	d, c := chatContainer(t, m)
	sshPort := listenPort(t, mustEnv(t, c, "CHAT_LISTEN"))
	opsPort := listenPort(t, mustEnv(t, c, "CHAT_HTTP_LISTEN"))
	if sshPort == opsPort {
		t.Fatalf("CHAT_HTTP_LISTEN shares the SSH port %d", sshPort)
	}
	if got := containerPort(t, c, intstr.FromString("ssh")); got != sshPort {
		t.Errorf("container port ssh is %d, CHAT_LISTEN says %d", got, sshPort)
	}
	if got := containerPort(t, c, intstr.FromString("ops")); got != opsPort {
		t.Errorf("container port ops is %d, CHAT_HTTP_LISTEN says %d", got, opsPort)
	}
	if !selectsOnly(t, d.Spec.Selector, d.Spec.Template.Labels) || !selectsOnly(t, d.Spec.Selector, chatPodLabels) {
		t.Errorf("Deployment chat's selector %v does not pick exactly its pods %v", d.Spec.Selector, d.Spec.Template.Labels)
	}

	for _, probe := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"readiness", c.ReadinessProbe, ops.ReadyPath},
		{"liveness", c.LivenessProbe, ops.HealthPath},
	} {
		if probe.probe == nil || probe.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", probe.name, probe.path)
			continue
		}
		get := probe.probe.HTTPGet
		if get.Path != probe.path {
			t.Errorf("%s probe asks %s, the server answers on %s", probe.name, get.Path, probe.path)
		}
		if got := containerPort(t, c, get.Port); got != opsPort {
			t.Errorf("%s probe asks port %d, CHAT_HTTP_LISTEN is on %d", probe.name, got, opsPort)
		}
		if get.Scheme != "" && get.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s probe uses %s; the operations listener speaks HTTP", probe.name, get.Scheme)
		}
	}
	if c.StartupProbe != nil {
		t.Errorf("a startup probe: the server listens at once or exits (it refuses to start without Redis)")
	}

	// The public Service: TCP 22 to the SSH listener, and nothing else.
	svc := k8sObject[corev1.Service](t, m, "Service", "chat")
	if !selectsOnly(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, chatPodLabels) {
		t.Errorf("Service chat selects %v, not the chat pods", svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service chat has %d ports, want only SSH", len(svc.Spec.Ports))
	}
	p := svc.Spec.Ports[0]
	if p.Port != 22 || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("Service chat exposes %s %d, want TCP 22", p.Protocol, p.Port)
	}
	if got := containerPort(t, c, p.TargetPort); got != sshPort {
		t.Errorf("Service chat forwards to %d, CHAT_LISTEN is on %d", got, sshPort)
	}
	// Client addresses: kept by the Service (Local), so no proxy is
	// trusted; trusting one here would let it name any client.
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("Service chat is %s with externalTrafficPolicy %q, want LoadBalancer and Local (client addresses without SNAT)", svc.Spec.Type, svc.Spec.ExternalTrafficPolicy)
	}
	if v, ok := envValue(t, c, "CHAT_TRUSTED_PROXIES"); ok {
		t.Errorf("CHAT_TRUSTED_PROXIES=%q, but the Service keeps client addresses itself (externalTrafficPolicy: Local): nothing sends the PROXY protocol", v)
	}

	// Metrics: every replica, ready or not, on the operations port.
	metrics := k8sObject[corev1.Service](t, m, "Service", "chat-metrics")
	if !selectsOnly(t, &metav1.LabelSelector{MatchLabels: metrics.Spec.Selector}, chatPodLabels) {
		t.Errorf("Service chat-metrics selects %v, not the chat pods", metrics.Spec.Selector)
	}
	if metrics.Spec.ClusterIP != corev1.ClusterIPNone || !metrics.Spec.PublishNotReadyAddresses {
		t.Errorf("Service chat-metrics: want headless (each replica scraped) and publishing replicas that are not ready")
	}
	for _, p := range metrics.Spec.Ports {
		if got := containerPort(t, c, p.TargetPort); got != opsPort {
			t.Errorf("Service chat-metrics forwards %d to %d, CHAT_HTTP_LISTEN is on %d", p.Port, got, opsPort)
		}
	}
	if ann := d.Spec.Template.Annotations; ann["prometheus.io/port"] != strconv.Itoa(int(opsPort)) || ann["prometheus.io/path"] != ops.MetricsPath {
		t.Errorf("pod annotations point Prometheus at port %s path %s, want %d %s", ann["prometheus.io/port"], ann["prometheus.io/path"], opsPort, ops.MetricsPath)
	}
}

func TestDeployK8sChatDrainsWithinItsGracePeriod(t *testing.T) {
	m := loadK8s(t)
	d, c := chatContainer(t, m)
	drain := defaultDrainTimeout
	if v, ok := envValue(t, c, "CHAT_DRAIN_TIMEOUT"); ok {
		var err error
		if drain, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CHAT_DRAIN_TIMEOUT=%q: %v", v, err)
		}
	}
	var pause time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		pre := c.Lifecycle.PreStop
		switch {
		case pre.Sleep != nil:
			pause = time.Duration(pre.Sleep.Seconds) * time.Second
		case pre.Exec != nil:
			t.Errorf("preStop runs %v: the image has no shell or tools to run", pre.Exec.Command)
		}
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatal("terminationGracePeriodSeconds unset (30 s by default): say it")
	}
	if got := time.Duration(*grace) * time.Second; got <= pause+drain {
		t.Errorf("terminationGracePeriodSeconds %v does not outlast the preStop pause %v and the drain %v: SIGKILL would cut the drain", got, pause, drain)
	}
	// A replica that stops being ready (draining, Redis lost) stops getting
	// new sessions within a few seconds.
	r := c.ReadinessProbe
	if r == nil {
		t.Fatal("no readiness probe")
	}
	if after := time.Duration(max(r.PeriodSeconds, 1)*max(r.FailureThreshold, 1)) * time.Second; after > 5*time.Second {
		t.Errorf("readiness notices an unready replica after %v, want at most 5s", after)
	}
	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update may take ready replicas away before new ones are ready: %+v", d.Spec.Strategy)
	}
}

func TestDeployK8sChatResourcesHoldItsSessionCap(t *testing.T) {
	m := loadK8s(t)
	_, c := chatContainer(t, m)
	sessions, err := strconv.ParseInt(mustEnv(t, c, "CHAT_MAX_SESSIONS"), 10, 64)
	if err != nil || sessions <= 0 {
		t.Fatalf("CHAT_MAX_SESSIONS: %v", err)
	}
	req, lim := c.Resources.Requests, c.Resources.Limits
	for _, q := range []struct {
		name string
		set  bool
	}{
		{"requests.cpu", !req.Cpu().IsZero()}, {"requests.memory", !req.Memory().IsZero()},
		{"limits.cpu", !lim.Cpu().IsZero()}, {"limits.memory", !lim.Memory().IsZero()},
	} {
		if !q.set {
			t.Fatalf("chat container: %s is not set", q.name)
		}
	}
	if req.Cpu().Cmp(*lim.Cpu()) > 0 || req.Memory().Cmp(*lim.Memory()) > 0 {
		t.Errorf("requests %v exceed limits %v", req, lim)
	}
	// Go sets GOMAXPROCS from the CPU limit, and the cap follows.
	if most := sessionsPerCPU * lim.Cpu().MilliValue() / 1000; sessions > most {
		t.Errorf("CHAT_MAX_SESSIONS=%d is more than %d per CPU of the %v limit (%d)", sessions, sessionsPerCPU, lim.Cpu(), most)
	}
	idleBytes := sessions * idleSessionBytes
	if req.Memory().Value() < idleBytes {
		t.Errorf("memory request %v is less than %d idle sessions need (%d MiB)", req.Memory(), sessions, idleBytes>>20)
	}
	// A quarter of the limit for the people who talk, handshakes and the
	// garbage collector's headroom.
	if lim.Memory().Value()*3/4 < idleBytes {
		t.Errorf("memory limit %v leaves no headroom above %d idle sessions (%d MiB)", lim.Memory(), sessions, idleBytes>>20)
	}
	idleMilliCPU := sessions * int64(idleSessionCPUPerS) / int64(time.Millisecond)
	if req.Cpu().MilliValue() < idleMilliCPU {
		t.Errorf("CPU request %v is less than %d idle sessions' countdowns take (%dm)", req.Cpu(), sessions, idleMilliCPU)
	}
	if v, ok := envValue(t, c, "GOMEMLIMIT"); ok {
		limit := parseGoMemLimit(t, v)
		if limit <= idleBytes || limit >= lim.Memory().Value() {
			t.Errorf("GOMEMLIMIT=%s should sit between the idle sessions (%d MiB) and the memory limit %v", v, idleBytes>>20, lim.Memory())
		}
	}
}

// parseGoMemLimit reads GOMEMLIMIT's syntax: bytes with an optional unit.
func parseGoMemLimit(t *testing.T, v string) int64 {
	t.Helper()
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			bytes, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("GOMEMLIMIT=%q: %v", v, err)
			}
			return bytes << u.shift
		}
	}
	bytes, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("GOMEMLIMIT=%q: %v", v, err)
	}
	return bytes
}

func TestDeployK8sPodsAreHardened(t *testing.T) {
	m := loadK8s(t)
	for _, d := range k8sObjects[appsv1.Deployment](m) {
		t.Run(d.Name, func(t *testing.T) {
			pod := d.Spec.Template.Spec
			c := onlyContainer(t, d)
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("mounts a service account token; nothing here talks to the Kubernetes API")
			}
			if pod.HostNetwork || pod.HostPID || pod.HostIPC {
				t.Error("shares the node's namespaces")
			}
			psc := pod.SecurityContext
			if psc == nil {
				psc = &corev1.PodSecurityContext{}
			}
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("container has no securityContext")
			}
			if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
				t.Error("runAsNonRoot is not set")
			}
			uid := psc.RunAsUser
			if sc.RunAsUser != nil {
				uid = sc.RunAsUser
			}
			if uid == nil || *uid == 0 {
				t.Error("no fixed non-root runAsUser")
			}
			seccomp := psc.SeccompProfile
			if sc.SeccompProfile != nil {
				seccomp = sc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("seccompProfile %v, want RuntimeDefault", seccomp)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("allowPrivilegeEscalation is not false")
			}
			if isTrue(sc.Privileged) {
				t.Error("privileged")
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				t.Error("root filesystem is writable")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("capabilities %+v, want ALL dropped and none added", sc.Capabilities)
			}
			res := c.Resources
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := res.Requests[name]; !ok {
					t.Errorf("no %s request", name)
				}
				if _, ok := res.Limits[name]; !ok {
					t.Errorf("no %s limit", name)
				}
			}
			if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
				t.Error("service links put other Services' addresses into the environment (CHAT_PORT beside CHAT_* settings)")
			}
			if err := checkEnvReferences(c); err != nil {
				t.Error(err)
			}
		})
	}

	// The chat image runs as the same user the Deployment asks for.
	d, _ := chatContainer(t, m)
	if uid := d.Spec.Template.Spec.SecurityContext.RunAsUser; uid == nil || strconv.FormatInt(*uid, 10) != dockerfileUser(t) {
		t.Errorf("Deployment chat runs as %v, the image as %s", uid, dockerfileUser(t))
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// envReference is Kubernetes's $(NAME) substitution in env values and args.
var envReference = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkEnvReferences reports a $(NAME) that Kubernetes would leave as it
// is: one naming a variable not defined before it.
func checkEnvReferences(c *corev1.Container) error {
	defined := map[string]bool{}
	check := func(where, s string) error {
		for _, ref := range envReference.FindAllStringSubmatch(s, -1) {
			if !defined[ref[1]] {
				return fmt.Errorf("%s refers to $(%s), which is not defined before it", where, ref[1])
			}
		}
		return nil
	}
	for _, e := range c.Env {
		if err := check(e.Name, e.Value); err != nil {
			return err
		}
		defined[e.Name] = true
	}
	for _, a := range slices.Concat(c.Command, c.Args) {
		if err := check("an argument", a); err != nil {
			return err
		}
	}
	return nil
}

func TestDeployK8sChatSpreadsAndKeepsOneReplica(t *testing.T) {
	m := loadK8s(t)
	d, _ := chatContainer(t, m)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment chat runs %v replicas, want 2", d.Spec.Replicas)
	}
	spread := false
	for _, s := range d.Spec.Template.Spec.TopologySpreadConstraints {
		if s.TopologyKey == "kubernetes.io/hostname" && selects(t, s.LabelSelector, d.Spec.Template.Labels) {
			spread = true
		}
	}
	if a := d.Spec.Template.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if term.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" && selects(t, term.PodAffinityTerm.LabelSelector, d.Spec.Template.Labels) {
				spread = true
			}
		}
	}
	if !spread {
		t.Error("nothing spreads the replicas across nodes")
	}
	pdb := k8sObject[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", "chat")
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget chat: minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
	if !selectsOnly(t, pdb.Spec.Selector, chatPodLabels) {
		t.Errorf("PodDisruptionBudget chat selects %v, not the chat pods", pdb.Spec.Selector)
	}
}

func TestDeployK8sHostKeyComesReadOnlyFromASecret(t *testing.T) {
	m := loadK8s(t)
	d, c := chatContainer(t, m)
	path := mustEnv(t, c, "CHAT_HOST_KEY")
	if !filepath.IsAbs(path) {
		t.Fatalf("CHAT_HOST_KEY=%q is relative to the working directory", path)
	}
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if vm.MountPath == filepath.Dir(path) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("nothing is mounted at %s, where CHAT_HOST_KEY points", filepath.Dir(path))
	}
	if !mount.ReadOnly || mount.SubPath != "" {
		t.Errorf("host key mount %+v: want read-only, the whole volume", mount)
	}
	var secret *corev1.SecretVolumeSource
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name {
			secret = v.Secret
		}
	}
	if secret == nil || secret.SecretName == "" {
		t.Fatalf("volume %s is not a Secret", mount.Name)
	}
	if isTrue(secret.Optional) {
		t.Error("the host key Secret is optional: a replica would start without the shared key")
	}
	found := false
	for _, item := range secret.Items {
		found = found || item.Path == filepath.Base(path)
	}
	if !found {
		t.Errorf("Secret %s's items %+v put nothing at %s", secret.SecretName, secret.Items, path)
	}
}

func TestDeployK8sRedisKeepsRoomsOffDisk(t *testing.T) {
	m := loadK8s(t)
	d := k8sObject[appsv1.Deployment](t, m, "Deployment", "redis")
	c := onlyContainer(t, d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment redis runs %v replicas: two Redises would be two sources of truth", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Deployment redis updates by %q: a rolling update runs two Redises behind one Service for a while; want Recreate", d.Spec.Strategy.Type)
	}
	if !selectsOnly(t, d.Spec.Selector, redisPodLabels) || !selects(t, d.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Deployment redis's selector %v does not pick exactly its pods", d.Spec.Selector)
	}
	if !digestPinned.MatchString(c.Image) {
		t.Errorf("Redis image %q is not pinned by digest (name:tag@sha256:…)", c.Image)
	}
	args := slices.Concat(c.Command, c.Args)
	if len(args) < 2 || args[0] != "redis-server" || !filepath.IsAbs(args[1]) {
		t.Fatalf("Redis runs %v, want redis-server and its configuration file", args)
	}
	conf := k8sRedisConfig(t, m, d, args[1])
	want := redisDirectives(t, readFile(t, "deploy/redis.conf"))
	if got := redisDirectives(t, conf); !maps.Equal(got, want) {
		t.Errorf("Kubernetes Redis configuration %v differs from deploy/redis.conf %v", got, want)
	}
	maxmemory := redisBytes(t, want["maxmemory"])
	if limit := c.Resources.Limits.Memory(); limit.Value() <= maxmemory {
		t.Errorf("Redis memory limit %v is not above maxmemory %s", limit, want["maxmemory"])
	}
	// Redis's working directory is in memory: if anything were ever
	// written there, no disk would hold it.
	for _, vm := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && !vm.ReadOnly && (v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory) {
				t.Errorf("Redis can write to %s, which is not in memory", vm.MountPath)
			}
		}
	}
}

// k8sRedisConfig returns the file at path in the Redis container: a key of
// the ConfigMap mounted at its directory.
func k8sRedisConfig(t *testing.T, m *k8sManifests, d *appsv1.Deployment, path string) string {
	t.Helper()
	c := onlyContainer(t, d)
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != filepath.Dir(path) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				cm := k8sObject[corev1.ConfigMap](t, m, "ConfigMap", v.ConfigMap.Name)
				conf, ok := cm.Data[filepath.Base(path)]
				if !ok {
					t.Fatalf("ConfigMap %s has no %s", cm.Name, filepath.Base(path))
				}
				return conf
			}
		}
	}
	t.Fatalf("no ConfigMap is mounted where Redis reads %s", path)
	return ""
}

// k8sRedisConfigFile writes the Kubernetes Redis configuration to a file,
// for a real redis-server to run.
func k8sRedisConfigFile(t *testing.T) string {
	t.Helper()
	m := loadK8s(t)
	d := k8sObject[appsv1.Deployment](t, m, "Deployment", "redis")
	c := onlyContainer(t, d)
	args := slices.Concat(c.Command, c.Args)
	if len(args) < 2 {
		t.Fatalf("Redis runs %v, want redis-server and its configuration file", args)
	}
	path := filepath.Join(t.TempDir(), "redis.conf")
	if err := os.WriteFile(path, []byte(k8sRedisConfig(t, m, d, args[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// redisDirectives reads a redis.conf: directive to its arguments.
func redisDirectives(t *testing.T, conf string) map[string]string {
	t.Helper()
	directives := map[string]string{}
	for line := range strings.Lines(conf) {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		name := strings.ToLower(fields[0])
		if _, dup := directives[name]; dup {
			t.Fatalf("redis.conf sets %s twice", name)
		}
		directives[name] = strings.Join(fields[1:], " ")
	}
	return directives
}

// redisBytes reads a Redis memory size: 1k is 1000 bytes, 1kb is 1024.
func redisBytes(t *testing.T, v string) int64 {
	t.Helper()
	v = strings.ToLower(v)
	for i, unit := range []string{"k", "m", "g"} {
		for _, u := range []struct {
			suffix string
			base   int64
		}{{unit + "b", 1024}, {unit, 1000}} {
			if n, ok := strings.CutSuffix(v, u.suffix); ok {
				x, err := strconv.ParseInt(n, 10, 64)
				if err != nil {
					t.Fatalf("Redis size %q: %v", v, err)
				}
				for range i + 1 {
					x *= u.base
				}
				return x
			}
		}
	}
	x, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("Redis size %q: %v", v, err)
	}
	return x
}

func TestDeployK8sChatReachesRedisThroughItsService(t *testing.T) {
	m := loadK8s(t)
	_, c := chatContainer(t, m)
	redis := k8sObject[appsv1.Deployment](t, m, "Deployment", "redis")
	rc := onlyContainer(t, redis)
	svc := k8sObject[corev1.Service](t, m, "Service", "redis")
	if !selectsOnly(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, redisPodLabels) {
		t.Errorf("Service redis selects %v, not the Redis pod", svc.Spec.Selector)
	}
	if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service redis is %s: Redis is for the cluster only", svc.Spec.Type)
	}
	u, err := url.Parse(mustEnv(t, c, "CHAT_REDIS_URL"))
	if err != nil {
		t.Fatalf("CHAT_REDIS_URL: %v", err)
	}
	if u.Hostname() != svc.Name {
		t.Errorf("CHAT_REDIS_URL names host %s, the Service is %s", u.Hostname(), svc.Name)
	}
	var port *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == u.Port() {
			port = &svc.Spec.Ports[i]
		}
	}
	if port == nil {
		t.Fatalf("CHAT_REDIS_URL's port %s is not one of Service redis's", u.Port())
	}
	if got := containerPort(t, rc, port.TargetPort); got != redisPort(t, m) {
		t.Errorf("Service redis forwards to %d, Redis listens on %d", got, redisPort(t, m))
	}
	// The password the chat sends is the one Redis requires.
	secretOf := func(c *corev1.Container, name string) corev1.SecretKeySelector {
		for _, e := range c.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				return *e.ValueFrom.SecretKeyRef
			}
		}
		t.Fatalf("container %s takes no %s from a Secret", c.Name, name)
		return corev1.SecretKeySelector{}
	}
	if pass, _ := u.User.Password(); u.User == nil || pass != "$(REDIS_PASSWORD)" {
		t.Errorf("CHAT_REDIS_URL's password is not $(REDIS_PASSWORD)")
	}
	if !slices.Contains(rc.Args, "$(REDIS_PASSWORD)") {
		t.Errorf("Redis requires no $(REDIS_PASSWORD): %v", rc.Args)
	}
	if a, b := secretOf(c, "REDIS_PASSWORD"), secretOf(rc, "REDIS_PASSWORD"); a != b {
		t.Errorf("the chat's Redis password comes from %+v, Redis's from %+v", a, b)
	}
}

// redisPort is the port the Redis configuration listens on.
func redisPort(t *testing.T, m *k8sManifests) int32 {
	t.Helper()
	d := k8sObject[appsv1.Deployment](t, m, "Deployment", "redis")
	c := onlyContainer(t, d)
	args := slices.Concat(c.Command, c.Args)
	port, err := strconv.ParseUint(redisDirectives(t, k8sRedisConfig(t, m, d, args[1]))["port"], 10, 16)
	if err != nil {
		t.Fatalf("Redis port: %v", err)
	}
	if got := containerPort(t, c, intstr.FromString("redis")); got != int32(port) {
		t.Errorf("Redis's container port is %d, its configuration says %d", got, port)
	}
	return int32(port)
}

func TestDeployK8sOnlyTheChatReachesRedis(t *testing.T) {
	m := loadK8s(t)
	policies := k8sObjects[networkingv1.NetworkPolicy](m)
	redisDeployment := k8sObject[appsv1.Deployment](t, m, "Deployment", "redis")
	redisContainer := onlyContainer(t, redisDeployment)
	chatDeployment, chatC := chatContainer(t, m)
	redisLabels, chatLabels := redisDeployment.Spec.Template.Labels, chatDeployment.Spec.Template.Labels
	port := redisPort(t, m)

	isolated, fromChat := false, false
	for _, p := range policies {
		if !selects(t, &p.Spec.PodSelector, redisLabels) {
			continue
		}
		if slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			isolated = true
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s lets anyone reach Redis", p.Name)
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil || !selectsOnly(t, peer.PodSelector, chatLabels) {
					t.Errorf("NetworkPolicy %s lets %+v reach Redis; only the chat pods may", p.Name, peer)
				}
			}
			if len(rule.Ports) == 0 {
				t.Errorf("NetworkPolicy %s opens every port of Redis", p.Name)
			}
			for _, rp := range rule.Ports {
				if rp.Port == nil || containerPort(t, redisContainer, *rp.Port) != port || rp.EndPort != nil {
					t.Errorf("NetworkPolicy %s opens %v on Redis, want only %d", p.Name, rp.Port, port)
				}
			}
			fromChat = fromChat || len(rule.From) > 0
		}
		for range p.Spec.Egress {
			t.Errorf("NetworkPolicy %s lets Redis connect out; it needs nothing", p.Name)
		}
	}
	if !isolated {
		t.Error("no NetworkPolicy isolates the Redis pods: anything in the cluster can connect")
	}
	if !fromChat {
		t.Error("no NetworkPolicy lets the chat pods reach Redis")
	}

	// The chat pods: SSH from anywhere, the operations port from
	// monitoring only, and out to Redis.
	sshPort := listenPort(t, mustEnv(t, chatC, "CHAT_LISTEN"))
	opsPort := listenPort(t, mustEnv(t, chatC, "CHAT_HTTP_LISTEN"))
	sshOpen, toRedis := false, false
	for _, p := range policies {
		if !selects(t, &p.Spec.PodSelector, chatLabels) {
			continue
		}
		for _, rule := range p.Spec.Ingress {
			for _, rp := range rule.Ports {
				if rp.Port == nil {
					t.Errorf("NetworkPolicy %s opens every port of the chat pods", p.Name)
					continue
				}
				switch containerPort(t, chatC, *rp.Port) {
				case sshPort:
					sshOpen = sshOpen || len(rule.From) == 0
				case opsPort:
					if len(rule.From) == 0 {
						t.Errorf("NetworkPolicy %s opens the operations port to everyone", p.Name)
					}
				}
			}
		}
		for _, rule := range p.Spec.Egress {
			peerIsRedis := slices.ContainsFunc(rule.To, func(peer networkingv1.NetworkPolicyPeer) bool {
				return peer.PodSelector != nil && selects(t, peer.PodSelector, redisLabels)
			})
			portIsRedis := slices.ContainsFunc(rule.Ports, func(rp networkingv1.NetworkPolicyPort) bool {
				return rp.Port != nil && (rp.Port.IntValue() == int(port) || rp.Port.StrVal == "redis")
			})
			toRedis = toRedis || (peerIsRedis && portIsRedis)
		}
	}
	if !sshOpen {
		t.Errorf("no NetworkPolicy lets clients reach the chat pods' SSH port %d", sshPort)
	}
	if !toRedis {
		t.Error("no NetworkPolicy lets the chat pods connect to Redis")
	}
}

// digestPinned is an image reference with its tag, pinned by digest.
var digestPinned = regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
