package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ssh-burn/chat/internal/faultproxy"
)

const (
	// startTimeout bounds the wait for a server or Redis to be ready.
	startTimeout = 30 * time.Second
	// stopGrace is how long a process gets after SIGTERM before SIGKILL;
	// the server's own shutdown grace is 10 s.
	stopGrace = 15 * time.Second
	// clockTicks is the unit of utime and stime in /proc/PID/stat
	// (USER_HZ, 100 on every Linux the tool runs on).
	clockTicks = 100
)

// buildServer builds the chat server from the module that holds dir into
// out, and returns the binary's path.
func buildServer(ctx context.Context, dir, out string) (string, error) {
	list := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}")
	list.Dir = dir
	root, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("find the module of %s: %w", dir, commandError(err))
	}
	bin := filepath.Join(out, "chat")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = strings.TrimSpace(string(root))
	if output, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the server in %s: %w\n%s", build.Dir, err, output)
	}
	return bin, nil
}

// commandError adds a failed command's stderr to its error.
func commandError(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
	}
	return err
}

// servers is what a run talks to: the addresses of one or more replicas
// and, when known, their PIDs (for CPU and memory readings).
type servers struct {
	addrs []string
	pids  []int
	// redis are the redis-servers this tool started: one (with -redis),
	// or a cluster's masters; none otherwise.
	redis []redisNode
	// maxmemory is the redis-server's maxmemory in bytes; zero: none.
	maxmemory int64
	// fault is the proxy between the last replica and Redis, in the
	// slow-Redis scenario; nil otherwise.
	fault *faultproxy.Proxy
	// https are the replicas' operations listeners (/metrics, pprof),
	// when they were started with one.
	https []string
	// procs are the processes this tool started (replicas, then Redis);
	// empty for servers given with -addr.
	procs []*process
}

// serverOptions say how to start servers.
type serverOptions struct {
	bin         string
	dir         string // for host key and logs
	replicas    int
	redis       bool
	maxSessions int
	// maxmemory is redis-server's maxmemory ("64mb"); empty: none.
	maxmemory string
	// cluster, if not zero, starts a Redis Cluster of this many masters
	// instead of one redis-server.
	cluster int
	// roomTTL is the replicas' -room-ttl; empty: their default.
	roomTTL string
	// http gives every replica an operations listener, for its metrics.
	http bool
	// link, if set, gives the Redis address replica i is to use instead
	// of Redis's own (a proxy in between, say).
	link func(replica int, redisAddr string) (string, error)
}

// startServers starts Redis (if asked) and the replicas, one after the
// other so the first creates the host key the others share.
func startServers(ctx context.Context, opts serverOptions) (s *servers, err error) {
	s = &servers{}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, s.logTails())
			s.stop()
			s = nil
		}
	}()
	switch {
	case opts.cluster > 0:
		if s.redis, err = startCluster(ctx, s, opts.dir, opts.cluster); err != nil {
			return s, err
		}
	case opts.redis:
		addr, redis, err := startRedis(ctx, "redis", opts.dir, opts.maxmemory, false)
		if err != nil {
			return s, err
		}
		s.procs = append(s.procs, redis)
		s.redis = []redisNode{{addr, redis.cmd.Process.Pid}}
		if opts.maxmemory != "" {
			if s.maxmemory, err = redisMaxmemory(ctx, addr); err != nil {
				return s, err
			}
		}
	}
	hostKey := filepath.Join(opts.dir, "id_ed25519")
	for i := range opts.replicas {
		args := []string{"-listen", "127.0.0.1:0", "-host-key", hostKey}
		if opts.roomTTL != "" {
			args = append(args, "-room-ttl", opts.roomTTL)
		}
		if opts.http {
			args = append(args, "-http", "127.0.0.1:0", "-pprof", "true")
		}
		if len(s.redis) > 0 {
			url := s.redisURL()
			if opts.link != nil {
				addr, err := opts.link(i, s.redis[0].addr)
				if err != nil {
					return s, fmt.Errorf("replica %d's link to redis: %w", i, err)
				}
				url = "redis://" + addr
			}
			args = append(args, "-redis", url)
		}
		cmd := exec.Command(opts.bin, args...)
		// The environment rather than -max-sessions: older builds
		// without the flag then still start.
		cmd.Env = append(os.Environ(), "CHAT_MAX_SESSIONS="+strconv.Itoa(opts.maxSessions))
		p, err := startProcess(fmt.Sprintf("replica %d", i), cmd, filepath.Join(opts.dir, fmt.Sprintf("replica-%d.log", i)))
		if err != nil {
			return s, err
		}
		s.procs = append(s.procs, p)
		addr, httpAddr, err := p.log.waitListening(ctx, p.exited)
		if err != nil {
			return s, fmt.Errorf("replica %d: %w", i, err)
		}
		s.addrs = append(s.addrs, addr)
		if opts.http {
			s.https = append(s.https, httpAddr)
		}
		s.pids = append(s.pids, p.cmd.Process.Pid)
	}
	return s, nil
}

// redisNode is a redis-server this tool started.
type redisNode struct {
	addr string
	pid  int
}

// redisAddrs is where the Redis this tool started listens: one address,
// or a cluster's masters.
func (s *servers) redisAddrs() []string {
	var out []string
	for _, n := range s.redis {
		out = append(out, n.addr)
	}
	return out
}

// redisURL is the replicas' -redis for what this tool started: a cluster
// as redis://host1:port?addr=host2:port&addr=… (redisstore.NewClient).
func (s *servers) redisURL() string {
	u := "redis://" + s.redis[0].addr
	for i, n := range s.redis[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.addr
	}
	return u
}

// startRedis starts a Redis without persistence on a free loopback port,
// with maxmemory if it is not empty and as a cluster node if asked (its
// bus on the port 10000 above), and waits until it answers PING.
func startRedis(ctx context.Context, name, dir, maxmemory string, clusterNode bool) (string, *process, error) {
	port, err := freeRedisPort(clusterNode)
	if err != nil {
		return "", nil, err
	}
	// The settings of deploy/redis.conf that matter for what Redis does.
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory-policy", "noeviction", "--slowlog-log-slower-than", "-1", "--dir", dir)
	if maxmemory != "" {
		cmd.Args = append(cmd.Args, "--maxmemory", maxmemory)
	}
	if clusterNode {
		cmd.Args = append(cmd.Args, "--cluster-enabled", "yes", "--cluster-config-file", name+"-nodes.conf",
			"--cluster-node-timeout", "5000")
	}
	p, err := startProcess(name, cmd, filepath.Join(dir, name+".log"))
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitFor(ctx, startTimeout, func() bool { return redisAnswers(addr) || p.hasExited() }); err != nil {
		p.stop()
		return "", nil, fmt.Errorf("%s on %s: %w", name, addr, err)
	}
	if p.hasExited() {
		return "", nil, fmt.Errorf("%s exited at start: %w%s", name, p.err, tail(p.logPath, 10))
	}
	return addr, p, nil
}

// freeRedisPort finds a loopback port nobody listens on; for a cluster
// node, one whose bus port (10000 above) is free too.
func freeRedisPort(withBus bool) (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a port for redis: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !withBus {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000))); err == nil {
			bus.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port pair for a redis cluster node")
}

// startCluster starts n cluster nodes (their processes go to s, to be
// stopped with it), makes them a cluster of masters without replicas
// (redis-cli --cluster create, as store/redistest does) and waits until
// every node says the cluster is ok.
func startCluster(ctx context.Context, s *servers, dir string, n int) ([]redisNode, error) {
	var nodes []redisNode
	for i := range n {
		addr, p, err := startRedis(ctx, fmt.Sprintf("redis-%d", i), dir, "", true)
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, p)
		nodes = append(nodes, redisNode{addr, p.cmd.Process.Pid})
	}
	args := []string{"--cluster", "create"}
	for _, node := range nodes {
		args = append(args, node.addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	createCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if out, err := exec.CommandContext(createCtx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, node := range nodes {
		rdb := newRedisClient(node.addr)
		err := waitFor(ctx, startTimeout, func() bool {
			info, err := rdb.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("cluster node %s not ok: %w", node.addr, err)
		}
	}
	return nodes, nil
}

// redisAnswers reports whether Redis at addr answers PING.
func redisAnswers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// stop ends every process started, replicas first, then Redis (the
// reverse of their start: a replica gives its seats up as it stops).
func (s *servers) stop() error {
	var errs []error
	for _, p := range slices.Backward(s.procs) {
		errs = append(errs, p.stop())
	}
	if s.fault != nil {
		errs = append(errs, s.fault.Close())
	}
	return errors.Join(errs...)
}

// logTails is the end of every log this tool keeps, for an error message.
func (s *servers) logTails() string {
	var b strings.Builder
	for _, p := range s.procs {
		b.WriteString(tail(p.logPath, 15))
	}
	return b.String()
}

// sessionsOpen is the number of chat sessions the servers this tool
// started have reported as begun and not ended (from their logs).
func (s *servers) sessionsOpen() int {
	n := 0
	for _, p := range s.procs {
		n += p.log.open()
	}
	return n
}

// serverLogSummary counts the warnings and errors the servers logged and
// shows the first few.
func (s *servers) serverLogSummary() (warnings, errs int, first []string) {
	for _, p := range s.procs {
		w, e, f := p.log.problems()
		warnings, errs, first = warnings+w, errs+e, append(first, f...)
	}
	return warnings, errs, first
}

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *logWatch
	exited  chan struct{}
	err     error // how it exited; read after exited is closed
	once    sync.Once
	stopErr error
}

func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, log: newLogWatch(f), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and, if the process is still there after stopGrace,
// SIGKILL. It returns an error if the process had already died.
func (p *process) stop() error {
	p.once.Do(func() {
		if p.hasExited() {
			p.stopErr = fmt.Errorf("%s had exited before it was stopped: %v%s", p.name, p.err, tail(p.logPath, 15))
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		grace := time.NewTimer(stopGrace)
		defer grace.Stop()
		select {
		case <-p.exited:
		case <-grace.C:
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, stopGrace)
		}
	})
	return p.stopErr
}

// logWatch writes a process's output to its log file and reads the server's
// log lines as they pass: the address it listens on, sessions begun and
// ended, warnings and errors.
type logWatch struct {
	file *os.File

	mu        sync.Mutex
	partial   []byte
	listening chan [2]string // receives the listen and http addresses once
	sent      bool
	seats     int // "seat taken" lines
	ended     int // "session ended" lines
	warnings  int
	errors    int
	first     []string // the first few warnings and errors
}

var (
	listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)
	httpField     = regexp.MustCompile(` http=(\S+)`)
)

func newLogWatch(f *os.File) *logWatch {
	return &logWatch{file: f, listening: make(chan [2]string, 1)}
}

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.file.Write(p); err != nil {
		return 0, err
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	l.partial = append([]byte(nil), l.partial...)
	return len(p), nil
}

// line reads one log line. Called with l.mu held.
func (l *logWatch) line(s string) {
	switch {
	case strings.Contains(s, `msg="seat taken"`):
		l.seats++
	case strings.Contains(s, `msg="session ended"`):
		l.ended++
	case !l.sent:
		if m := listeningLine.FindStringSubmatch(s); m != nil {
			var httpAddr string
			if h := httpField.FindStringSubmatch(s); h != nil {
				httpAddr = h[1]
			}
			l.listening <- [2]string{m[1], httpAddr}
			l.sent = true
		}
	}
	isWarning, isError := strings.Contains(s, "level=WARN"), strings.Contains(s, "level=ERROR")
	if isWarning {
		l.warnings++
	}
	if isError {
		l.errors++
	}
	if (isWarning || isError) && len(l.first) < 5 {
		l.first = append(l.first, s)
	}
}

// waitListening returns the SSH and operations addresses from the
// server's "listening" line.
func (l *logWatch) waitListening(ctx context.Context, exited <-chan struct{}) (addr, httpAddr string, err error) {
	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	select {
	case addrs := <-l.listening:
		return addrs[0], addrs[1], nil
	case <-exited:
		return "", "", errors.New("exited before it listened")
	case <-timeout.C:
		return "", "", fmt.Errorf("no listening line within %v", startTimeout)
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

func (l *logWatch) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seats - l.ended
}

func (l *logWatch) problems() (warnings, errs int, first []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warnings, l.errors, append([]string(nil), l.first...)
}

// tail is the last n lines of the file at path, indented, for error
// messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(len(lines)-n, 0):]
	return fmt.Sprintf("\n--- last lines of %s:\n    %s", path, strings.Join(lines, "\n    "))
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-poll.C:
		case <-deadline.C:
			return fmt.Errorf("not within %v", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// cpuTime is the user and system CPU time process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 || end+2 > len(stat) {
		return 0, fmt.Errorf("cpu time: unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(stat[end+2:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpu time: unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// rss is the resident memory of process pid in bytes (VmRSS).
func rss(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("rss: no VmRSS in /proc/%d/status", pid)
}

// sumOver adds f over pids.
func sumOver[T int64 | time.Duration](pids []int, f func(int) (T, error)) (T, error) {
	var total T
	for _, pid := range pids {
		v, err := f(pid)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}

// serverConns counts the TCP connections that servers listening on addrs
// (on this machine) still hold: established, or closed by the client but
// not yet by the server.
func serverConns(addrs []string) (int, error) {
	want := map[string]bool{}
	for _, a := range addrs {
		ap, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return 0, fmt.Errorf("server connections: %w", err)
		}
		want[ap.String()] = true
	}
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("server connections: %w", err)
		}
		for line := range strings.Lines(string(data)) {
			f := strings.Fields(line)
			// sl local_address rem_address st ...; 01 ESTABLISHED,
			// 03 SYN_RECV, 08 CLOSE_WAIT.
			if len(f) < 4 || (f[3] != "01" && f[3] != "03" && f[3] != "08") {
				continue
			}
			if local, ok := parseProcAddr(f[1]); ok && want[local] {
				n++
			}
		}
	}
	return n, nil
}

// parseProcAddr reads an address of /proc/net/tcp ("0100007F:1F90": the IP
// in host byte order, little-endian here, then the port) as "ip:port".
func parseProcAddr(s string) (string, bool) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", false
	}
	// Each 32-bit word is little-endian.
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", false
	}
	ip := net.IP(raw)
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return (&net.TCPAddr{IP: ip, Port: int(port)}).String(), true
}

// openFiles counts the file descriptors process pid holds, and how many
// of them are TCP connections to one of redisAddrs (the Redis client's
// pool, which keeps idle connections a while: not a leak).
func openFiles(pid int, redisAddrs []string) (total, toRedis int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("open files: %w", err)
	}
	if len(redisAddrs) == 0 {
		return len(entries), 0, nil
	}
	remotes, err := tcpRemotes()
	if err != nil {
		return 0, 0, err
	}
	redis := map[string]bool{}
	for _, a := range redisAddrs {
		redis[a] = true
	}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && redis[remotes[strings.TrimSuffix(inode, "]")]] {
			toRedis++
		}
	}
	return len(entries), toRedis, nil
}

// tcpRemotes maps the inode of every TCP socket on this machine to its
// remote address ("ip:port").
func tcpRemotes() (map[string]string, error) {
	out := map[string]string{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tcp sockets: %w", err)
		}
		for line := range strings.Lines(string(data)) {
			// sl local_address rem_address st queues timer retransmits uid timeout inode ...
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			if remote, ok := parseProcAddr(f[2]); ok {
				out[f[9]] = remote
			}
		}
	}
	return out, nil
}
