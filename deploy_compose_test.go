package main

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ssh-burn/chat/internal/ops"
)

// The image, the compose file and HAProxy's configuration are read for
// what each relies on in the others: the image's healthcheck and listeners,
// the start order by health, the balancer's address as the one trusted
// proxy, and readiness checks on the real path and port.

// healthcheckBound is how long `chat healthcheck` waits for /healthz: a
// healthcheck's timeout must leave it that long.
const healthcheckBound = 2 * time.Second

// dockerfile is what the Dockerfile's instructions say, in order, with
// continuation lines joined and comments dropped.
type dockerfile struct {
	stages []dockerStage // one per FROM
}

// dockerStage is one stage's instructions, FROM first.
type dockerStage []dockerInstruction

type dockerInstruction struct {
	cmd  string // upper case
	args string
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	var df dockerfile
	var line string
	for raw := range strings.Lines(readFile(t, "Dockerfile")) {
		raw = strings.TrimRight(raw, "\r\n")
		if trimmed := strings.TrimSpace(raw); line == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(raw, `\`); ok {
			line += cont + " "
			continue
		}
		line += raw
		cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		line = ""
		in := dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			df.stages = append(df.stages, nil)
		}
		if len(df.stages) == 0 {
			t.Fatalf("Dockerfile: %s before FROM", in.cmd)
		}
		df.stages[len(df.stages)-1] = append(df.stages[len(df.stages)-1], in)
	}
	if len(df.stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(df.stages))
	}
	return df
}

// env is the environment a stage sets with ENV key=value.
func (s dockerStage) env() map[string]string {
	env := map[string]string{}
	for _, in := range s {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	return env
}

// last returns the arguments of the stage's last cmd instruction.
func (s dockerStage) last(cmd string) (string, bool) {
	var args string
	found := false
	for _, in := range s {
		if in.cmd == cmd {
			args, found = in.args, true
		}
	}
	return args, found
}

// runtime is the last stage: the image that ships.
func (df dockerfile) runtime() dockerStage { return df.stages[len(df.stages)-1] }

// dockerfileUser is the runtime image's numeric user.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	user, ok := loadDockerfile(t).runtime().last("USER")
	if !ok {
		t.Fatal("Dockerfile: the runtime image sets no USER")
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Fatalf("Dockerfile: USER %s: want a numeric non-root user, so Kubernetes can verify runAsNonRoot", user)
	}
	return uid
}

// execForm reads a JSON exec form such as ["/usr/local/bin/chat", "x"].
func execForm(t *testing.T, what, s string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		t.Fatalf("%s %s: want the exec form (no shell in the image): %v", what, s, err)
	}
	return argv
}

func TestDeployDockerfilePinsBasesAndChecksHealth(t *testing.T) {
	df := loadDockerfile(t)
	for i, stage := range df.stages {
		image, _, _ := strings.Cut(stage[0].args, " ")
		if !digestPinned.MatchString(image) {
			t.Errorf("stage %d: FROM %s is not pinned by digest (name:tag@sha256:…)", i+1, image)
		}
	}
	if got := df.stages[0].env()["GOTOOLCHAIN"]; got != "auto" {
		t.Errorf("build stage GOTOOLCHAIN=%q: want auto, so go.mod's toolchain line picks the Go that builds the release", got)
	}

	rt := df.runtime()
	env := rt.env()
	ssh, opsAddr := env["CHAT_LISTEN"], env["CHAT_HTTP_LISTEN"]
	if ssh == "" || opsAddr == "" {
		t.Fatalf("the image sets CHAT_LISTEN=%q and CHAT_HTTP_LISTEN=%q; the healthcheck needs the second", ssh, opsAddr)
	}
	sshPort, opsPort := listenPort(t, ssh), listenPort(t, opsAddr)
	if sshPort == opsPort {
		t.Errorf("the operations listener shares the SSH port %d", sshPort)
	}
	expose, _ := rt.last("EXPOSE")
	for _, port := range []int32{sshPort, opsPort} {
		if !slices.Contains(strings.Fields(expose), strconv.Itoa(int(port))) {
			t.Errorf("EXPOSE %s leaves out %d", expose, port)
		}
	}

	entry, ok := rt.last("ENTRYPOINT")
	if !ok {
		t.Fatal("no ENTRYPOINT")
	}
	binary := execForm(t, "ENTRYPOINT", entry)[0]
	hc, ok := rt.last("HEALTHCHECK")
	if !ok {
		t.Fatal("no HEALTHCHECK")
	}
	opts, cmd, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s runs nothing", hc)
	}
	if argv := execForm(t, "HEALTHCHECK CMD", cmd); !slices.Equal(argv, []string{binary, "healthcheck"}) {
		t.Errorf("HEALTHCHECK runs %v, want %v", argv, []string{binary, "healthcheck"})
	}
	timeout := 30 * time.Second // Docker's default
	for _, opt := range strings.Fields(opts) {
		if v, ok := strings.CutPrefix(opt, "--timeout="); ok {
			var err error
			if timeout, err = time.ParseDuration(v); err != nil {
				t.Fatalf("HEALTHCHECK %s: %v", opt, err)
			}
		}
	}
	if timeout <= healthcheckBound {
		t.Errorf("HEALTHCHECK timeout %v cuts off `chat healthcheck`, which waits up to %v", timeout, healthcheckBound)
	}
	dockerfileUser(t)
}

// compose is the part of deploy/compose.yaml the deployment relies on.
type compose struct {
	Services map[string]composeService `json:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet  string `json:"subnet"`
				IPRange string `json:"ip_range"`
			} `json:"config"`
		} `json:"ipam"`
	} `json:"networks"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       string            `json:"build"`
	Environment map[string]string `json:"environment"`
	Healthcheck *struct {
		Test    []string `json:"test"`
		Timeout string   `json:"timeout"`
	} `json:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	StopGracePeriod string   `json:"stop_grace_period"`
	Ports           []string `json:"ports"`
	Networks        map[string]struct {
		IPv4Address string `json:"ipv4_address"`
	} `json:"networks"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/compose.yaml")), &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	for _, name := range []string{"redis", "lb"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("deploy/compose.yaml has no service %s", name)
		}
	}
	return c
}

// replicas are the compose services built from this repository.
func (c compose) replicas() []string {
	var names []string
	for name, s := range c.Services {
		if s.Build != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestDeployComposeStartsInOrderOfHealth(t *testing.T) {
	c := loadCompose(t)
	imageEnv := loadDockerfile(t).runtime().env()
	replicas := c.replicas()
	if len(replicas) < 2 {
		t.Fatalf("deploy/compose.yaml runs replicas %v, want at least two", replicas)
	}
	for name, s := range c.Services {
		if s.Build == "" && !digestPinned.MatchString(s.Image) {
			t.Errorf("service %s: image %q is not pinned by digest (name:tag@sha256:…)", name, s.Image)
		}
	}

	redis := c.Services["redis"]
	if redis.Healthcheck == nil || !strings.Contains(strings.Join(redis.Healthcheck.Test, " "), "redis-cli ping") {
		t.Errorf("Redis's healthcheck %+v does not ask redis-cli ping", redis.Healthcheck)
	}
	lb := c.Services["lb"]
	for _, name := range replicas {
		s := c.Services[name]
		if s.DependsOn["redis"].Condition != "service_healthy" {
			t.Errorf("%s starts before Redis is healthy (depends_on %+v); it would exit and rely on a restart", name, s.DependsOn)
		}
		if lb.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("the balancer does not wait for %s to be healthy", name)
		}
		if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/usr/local/bin/chat", "healthcheck"}) {
			t.Errorf("%s's healthcheck is %+v, want the image's `chat healthcheck`", name, s.Healthcheck)
		} else if d, err := time.ParseDuration(s.Healthcheck.Timeout); err != nil || d <= healthcheckBound {
			t.Errorf("%s's healthcheck timeout %q cuts off `chat healthcheck`, which waits up to %v", name, s.Healthcheck.Timeout, healthcheckBound)
		}
		drain := defaultDrainTimeout
		if v := s.Environment["CHAT_DRAIN_TIMEOUT"]; v != "" {
			var err error
			if drain, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: CHAT_DRAIN_TIMEOUT=%q: %v", name, v, err)
			}
		}
		if grace, err := time.ParseDuration(s.StopGracePeriod); err != nil || grace <= drain {
			t.Errorf("%s: stop_grace_period %q does not outlast the drain (%v); Docker would SIGKILL it midway", name, s.StopGracePeriod, drain)
		}
		if s.Environment["CHAT_HTTP_LISTEN"] == "" && imageEnv["CHAT_HTTP_LISTEN"] == "" {
			t.Errorf("%s has no operations listener for its healthcheck", name)
		}
		u, err := url.Parse(s.Environment["CHAT_REDIS_URL"])
		if err != nil || u.Hostname() != "redis" {
			t.Errorf("%s: CHAT_REDIS_URL=%q does not name the redis service", name, s.Environment["CHAT_REDIS_URL"])
		}
	}

	// Only the balancer may name clients: its fixed address, inside the
	// network but outside the range Docker gives to other containers.
	var lbAddr netip.Addr
	for _, n := range lb.Networks {
		if a, err := netip.ParseAddr(n.IPv4Address); err == nil {
			lbAddr = a
		}
	}
	if !lbAddr.IsValid() {
		t.Fatal("the balancer has no fixed address to trust")
	}
	network, ok := c.Networks["default"]
	if !ok || len(network.IPAM.Config) != 1 {
		t.Fatal("deploy/compose.yaml: want one subnet on the default network")
	}
	subnet, err := netip.ParsePrefix(network.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("subnet: %v", err)
	}
	dynamic, err := netip.ParsePrefix(network.IPAM.Config[0].IPRange)
	if err != nil {
		t.Fatalf("ip_range: %v", err)
	}
	if !subnet.Contains(lbAddr) || dynamic.Contains(lbAddr) {
		t.Errorf("the balancer's %v must be in %v and outside %v, which Docker hands out", lbAddr, subnet, dynamic)
	}
	for _, name := range replicas {
		if got := c.Services[name].Environment["CHAT_TRUSTED_PROXIES"]; got != lbAddr.String() {
			t.Errorf("%s trusts proxies %q, want only the balancer (%v)", name, got, lbAddr)
		}
	}
}

// haproxyConfig is haproxy.cfg by section ("global", "backend chat", …):
// each line's fields, comments dropped.
type haproxyConfig map[string][][]string

func loadHAProxy(t *testing.T) haproxyConfig {
	t.Helper()
	cfg := haproxyConfig{}
	section := ""
	for line := range strings.Lines(readFile(t, "deploy/haproxy.cfg")) {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		fields := strings.Fields(line)
		if line[0] != ' ' && line[0] != '\t' {
			section = strings.Join(fields, " ")
			if _, dup := cfg[section]; dup {
				t.Fatalf("haproxy.cfg: section %q twice", section)
			}
			cfg[section] = nil
			continue
		}
		if section == "" {
			t.Fatalf("haproxy.cfg: %q outside a section", line)
		}
		cfg[section] = append(cfg[section], fields)
	}
	return cfg
}

// lines returns the section's lines that start with words.
func (cfg haproxyConfig) lines(section string, words ...string) [][]string {
	var found [][]string
	for _, fields := range cfg[section] {
		if len(fields) >= len(words) && slices.Equal(fields[:len(words)], words) {
			found = append(found, fields)
		}
	}
	return found
}

// option returns what follows the keyword in fields ("port" -> "9090").
func option(fields []string, keyword string) (string, bool) {
	i := slices.Index(fields, keyword)
	if i < 0 || i+1 >= len(fields) {
		return "", false
	}
	return fields[i+1], true
}

func TestDeployHAProxyFollowsReplicasAndTheirReadiness(t *testing.T) {
	cfg := loadHAProxy(t)
	c := loadCompose(t)
	imageEnv := loadDockerfile(t).runtime().env()

	if len(cfg.lines("global", "log", "stdout")) == 0 {
		t.Error("HAProxy logs nowhere: want `log stdout …` in global")
	}
	if len(cfg.lines("defaults", "log", "global")) == 0 || len(cfg.lines("defaults", "log-format"))+len(cfg.lines("defaults", "option", "tcplog")) == 0 {
		t.Error("defaults: want `log global` and a connection log format")
	}
	for _, f := range cfg.lines("defaults", "log-format") {
		if strings.Contains(strings.Join(f, " "), "%ci") {
			t.Error("HAProxy logs client addresses; the replicas do not")
		}
	}
	ns := cfg.lines("resolvers docker", "nameserver")
	if len(ns) != 1 || len(ns[0]) != 3 || ns[0][2] != "127.0.0.11:53" {
		t.Errorf("resolvers docker: nameservers %v, want Docker's 127.0.0.11:53", ns)
	}

	// The frontend listens where compose publishes the balancer.
	bind := cfg.lines("frontend ssh", "bind")
	if len(bind) != 1 {
		t.Fatalf("frontend ssh binds %v", bind)
	}
	published := false
	for _, p := range c.Services["lb"].Ports {
		published = published || strings.HasSuffix(p, ":"+strings.TrimPrefix(bind[0][1], ":"))
	}
	if !published {
		t.Errorf("compose publishes %v, HAProxy binds %s", c.Services["lb"].Ports, bind[0][1])
	}

	const backend = "backend chat"
	if len(cfg.lines(backend, "option", "httpchk")) != 1 {
		t.Error("the backend does not check replicas over HTTP")
	}
	send := cfg.lines(backend, "http-check", "send")
	if uri, ok := option(slices.Concat(send...), "uri"); !ok || uri != ops.ReadyPath {
		t.Errorf("health checks ask %v, want %s", send, ops.ReadyPath)
	}
	defaults := slices.Concat(cfg.lines(backend, "default-server")...)
	servers := cfg.lines(backend, "server")
	var names []string
	for _, s := range servers {
		fields := slices.Concat(defaults, s)
		name, addr := s[1], s[2]
		names = append(names, name)
		svc, ok := c.Services[name]
		if !ok || svc.Build == "" {
			t.Errorf("server %s is not a replica in deploy/compose.yaml", name)
			continue
		}
		env := func(k string) string {
			if v := svc.Environment[k]; v != "" {
				return v
			}
			return imageEnv[k]
		}
		if addr != name+":"+strconv.Itoa(int(listenPort(t, env("CHAT_LISTEN")))) {
			t.Errorf("server %s at %s, the replica listens on %s", name, addr, env("CHAT_LISTEN"))
		}
		if r, ok := option(fields, "resolvers"); !ok || r != "docker" {
			t.Errorf("server %s is not re-resolved through Docker's DNS: a recreated replica's address would be missed", name)
		}
		if !slices.Contains(fields, "send-proxy-v2") {
			t.Errorf("server %s gets no PROXY header: its per-address limits would see only the balancer", name)
		}
		if !slices.Contains(fields, "check") {
			t.Errorf("server %s is not checked", name)
		}
		if slices.Contains(fields, "check-send-proxy") {
			t.Errorf("server %s's checks send a PROXY header to the operations port, which does not expect one", name)
		}
		if port, _ := option(fields, "port"); port != strconv.Itoa(int(listenPort(t, env("CHAT_HTTP_LISTEN")))) {
			t.Errorf("server %s is checked on port %q, its operations listener is %s", name, port, env("CHAT_HTTP_LISTEN"))
		}
	}
	if replicas := c.replicas(); !slices.Equal(slices.Sorted(slices.Values(names)), replicas) {
		t.Errorf("HAProxy balances %v, compose runs %v", names, replicas)
	}
}
