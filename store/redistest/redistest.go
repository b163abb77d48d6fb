// Package redistest starts real redis-server processes on loopback for tests,
// breaks them as operators see Redis break (paused, restarted with or
// without its data, full), and runs a TCP proxy (internal/faultproxy) that
// can slow, hold or cut a client's line to them. Tests fail, never skip,
// when redis-server is missing: `make test` installs it.
package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/internal/faultproxy"
)

// startTimeout bounds how long a redis-server may take to answer.
const startTimeout = 15 * time.Second

// Server is one redis-server process, without persistence, on 127.0.0.1.
type Server struct {
	Addr   string
	t      testing.TB
	dir    string
	port   int
	config string // a redis.conf to run with instead of the built-in settings
	extra  []string
	tlsCA  string // the CA of a TLS-only server

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs a fresh redis-server for the test; it is stopped at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t, false)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// StartWithConfig runs a redis-server with the given redis.conf, on a free
// loopback port.
func StartWithConfig(t testing.TB, config string) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t, false), config: config}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// StartTLS runs a redis-server that speaks only TLS, with a certificate
// for 127.0.0.1 from a fresh private CA. CAFile is that CA, for clients to
// trust (SSL_CERT_FILE).
func StartTLS(t testing.TB) (s *Server, caFile string) {
	t.Helper()
	s = &Server{t: t, dir: t.TempDir(), port: freePort(t, false)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	caFile, certFile, keyFile := writeCertificates(t, s.dir)
	s.tlsCA = caFile
	s.extra = []string{"--tls-port", strconv.Itoa(s.port), "--port", "0",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no"}
	s.start()
	t.Cleanup(s.Stop)
	return s, caFile
}

// writeCertificates makes a CA and a server certificate for 127.0.0.1
// signed by it, as PEM files in dir.
func writeCertificates(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	caKey, serverKey := newKey(), newKey()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", leafDER), write("server.key", "PRIVATE KEY", keyDER)
}

func (s *Server) start() {
	s.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redis-server is not installed (run `make test`, which installs it): %v", err)
	}
	args := []string{
		// The same privacy settings as production (deploy/redis.conf).
		"--save", "", "--appendonly", "no", "--slowlog-log-slower-than", "-1",
		"--maxmemory-policy", "noeviction",
	}
	if s.config != "" {
		args = []string{s.config}
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir)
	cmd := exec.Command(bin, append(args, s.extra...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	waitUntil(s.t, "redis-server on "+s.Addr+" answers", func() bool {
		opts := &redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second}
		if s.tlsCA != "" {
			opts.TLSConfig = s.tlsConfig()
		}
		c := redis.NewClient(opts)
		defer c.Close()
		return c.Ping(context.Background()).Err() == nil
	})
}

func (s *Server) tlsConfig() *tls.Config {
	pemCA, err := os.ReadFile(s.tlsCA)
	if err != nil {
		s.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCA)
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// Stop kills the server (it holds nothing worth a graceful stop) and waits
// for it to exit. It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart stops the server and starts an empty one on the same port, as a
// crash and restart of a Redis without persistence would.
func (s *Server) Restart() {
	s.t.Helper()
	s.RestartWith(false)
}

// RestartWith stops the server and starts it again on the same port. With
// keepData it first saves its data (SHUTDOWN SAVE, as a Redis configured
// to persist does on a clean stop) and the new process loads it, as after
// a restart or a failover that loses nothing; without, the data is gone.
func (s *Server) RestartWith(keepData bool) {
	s.t.Helper()
	dump := filepath.Join(s.dir, "dump.rdb")
	if keepData {
		s.mu.Lock()
		cmd := s.cmd
		s.cmd = nil
		s.mu.Unlock()
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		// The server closes the connection as it exits: no reply comes.
		_ = c.ShutdownSave(context.Background()).Err()
		c.Close()
		if cmd != nil {
			_ = cmd.Wait()
		}
		if _, err := os.Stat(dump); err != nil {
			s.t.Fatalf("redis-server saved no data on SHUTDOWN SAVE: %v", err)
		}
	} else {
		s.Stop()
		_ = os.Remove(dump)
	}
	s.start()
}

// Pause stops the server process (SIGSTOP) until resume is called: its
// connections stay open and nothing on them is answered, as during a slow
// fork, a stalled disk or a hung host.
func (s *Server) Pause() (resume func()) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("pause redis-server: %v", err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				s.t.Errorf("resume redis-server: %v", err)
			}
		})
	}
	// A test that fails while Redis is paused must not leave it stopped.
	s.t.Cleanup(resume)
	return resume
}

// Fill makes the server full: maxmemory below what it uses, so with the
// noeviction policy it refuses whatever needs memory, until free is called.
func (s *Server) Fill() (free func()) {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	if err := c.ConfigSet(context.Background(), "maxmemory", "1").Err(); err != nil {
		s.t.Fatalf("fill redis-server: %v", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
			defer c.Close()
			if err := c.ConfigSet(context.Background(), "maxmemory", "0").Err(); err != nil {
				s.t.Errorf("free redis-server: %v", err)
			}
		})
	}
}

// PID is the redis-server's process ID.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Cluster is a Redis Cluster on loopback: masters, and perhaps a replica
// of each.
type Cluster struct {
	// Addrs are every node's, masters first as created.
	Addrs []string
	nodes []*Server
}

// StartCluster runs a cluster of n masters and waits until it serves every
// slot.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, 0)
}

// StartClusterWithReplicas runs a cluster of n masters, each with one
// replica, and waits until it serves every slot and every replica is in
// sync with its master.
func StartClusterWithReplicas(t testing.TB, n int) *Cluster {
	t.Helper()
	c := startCluster(t, 2*n, 1)
	for _, addr := range c.Addrs {
		waitUntil(t, "node "+addr+" is a master or a replica in sync", func() bool {
			node := redis.NewClient(&redis.Options{Addr: addr})
			defer node.Close()
			info, err := node.Info(context.Background(), "replication").Result()
			return err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up"))
		})
	}
	return c
}

func startCluster(t testing.TB, n, replicas int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for range n {
		s := &Server{t: t, dir: t.TempDir(), port: freePort(t, true)}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.extra = []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-node-timeout", "5000"}
		s.start()
		t.Cleanup(s.Stop)
		c.nodes = append(c.nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed (run `make test`, which installs it): %v", err)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(t)
	return c
}

// Node is a client of the node at Addrs[i] alone, closed at cleanup: what
// that one node holds and serves, as an operator would ask it.
func (c *Cluster) Node(t testing.TB, i int) *redis.Client {
	t.Helper()
	node := redis.NewClient(&redis.Options{Addr: c.Addrs[i], MaxRetries: -1})
	t.Cleanup(func() { node.Close() })
	return node
}

// SlotOwner is the index in Addrs of the master that serves slot, as
// that master itself says.
func (c *Cluster) SlotOwner(t testing.TB, slot int) int {
	t.Helper()
	for i := range c.Addrs {
		if _, mine := c.nodeOwns(t, i, slot); mine {
			return i
		}
	}
	t.Fatalf("no node serves slot %d", slot)
	return -1
}

// nodeOwns asks node i for its ID and whether it serves slot.
func (c *Cluster) nodeOwns(t testing.TB, i, slot int) (id string, owns bool) {
	t.Helper()
	ctx := context.Background()
	node := redis.NewClient(&redis.Options{Addr: c.Addrs[i], MaxRetries: -1})
	defer node.Close()
	id, err := node.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatalf("cluster myid of %s: %v", c.Addrs[i], err)
	}
	slots, err := node.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("cluster slots of %s: %v", c.Addrs[i], err)
	}
	for _, r := range slots {
		if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
			return id, r.Nodes[0].ID == id
		}
	}
	return id, false
}

// Migration is a slot on its way from one master to another: marked
// importing and migrating, its keys moved, its ownership not yet.
type Migration struct {
	t              testing.TB
	c              *Cluster
	slot, from, to int
	fromID, toID   string
}

// BeginMigration starts moving slot, keys and all, to the master at
// Addrs[to], as redis-cli --cluster reshard does: CLUSTER SETSLOT
// IMPORTING on the target, MIGRATING on the source, then MIGRATE of every
// key of the slot. Until Finish, the source answers ASK for them and the
// target serves them to clients that say ASKING.
func (c *Cluster) BeginMigration(t testing.TB, slot, to int) *Migration {
	t.Helper()
	from := c.SlotOwner(t, slot)
	if from == to {
		t.Fatalf("slot %d is on node %d already", slot, to)
	}
	m := &Migration{t: t, c: c, slot: slot, from: from, to: to}
	m.fromID, _ = c.nodeOwns(t, from, slot)
	m.toID, _ = c.nodeOwns(t, to, slot)
	ctx := context.Background()
	src, dst := c.Node(t, from), c.Node(t, to)
	if err := dst.Do(ctx, "cluster", "setslot", slot, "importing", m.fromID).Err(); err != nil {
		t.Fatalf("setslot importing: %v", err)
	}
	if err := src.Do(ctx, "cluster", "setslot", slot, "migrating", m.toID).Err(); err != nil {
		t.Fatalf("setslot migrating: %v", err)
	}
	host, port, _ := net.SplitHostPort(c.Addrs[to])
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 1000).Result()
		if err != nil {
			t.Fatalf("getkeysinslot: %v", err)
		}
		if len(keys) == 0 {
			return m
		}
		// All keys in one MIGRATE: atomic, so a script never finds some
		// of a room's keys here and some there (TRYAGAIN).
		args := []any{"migrate", host, port, "", 0, 5000, "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
}

// Finish hands the slot to its new owner: CLUSTER SETSLOT NODE on the
// target, the source (which then tells its sharded subscribers of the
// slot with an sunsubscribe), and every other master.
func (m *Migration) Finish() {
	m.t.Helper()
	order := []int{m.to, m.from}
	for i := range m.c.Addrs {
		if i != m.to && i != m.from {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := m.c.Node(m.t, i).Do(context.Background(), "cluster", "setslot", m.slot, "node", m.toID).Err(); err != nil {
			m.t.Fatalf("setslot node on %s: %v", m.c.Addrs[i], err)
		}
	}
}

// MigrateSlot moves slot, keys and all, to the master at Addrs[to].
func (c *Cluster) MigrateSlot(t testing.TB, slot, to int) {
	t.Helper()
	c.BeginMigration(t, slot, to).Finish()
}

// RestartNode restarts the master at Addrs[i] with its data and its
// cluster configuration, as a crash of a node that persists does, and
// waits until every node finds the cluster whole again.
func (c *Cluster) RestartNode(t testing.TB, i int) {
	t.Helper()
	c.nodes[i].RestartWith(true)
	c.waitOK(t)
}

// Failover hands the slots of the master that serves slot to its replica,
// as an operator's CLUSTER FAILOVER does: the master stops taking writes,
// the replica catches up with it and takes over, and the old master
// becomes its replica. Nothing written is lost. It returns the index of
// the new master, once every node finds the cluster whole.
func (c *Cluster) Failover(t testing.TB, slot int) int {
	t.Helper()
	from := c.SlotOwner(t, slot)
	fromID, _ := c.nodeOwns(t, from, slot)
	ctx := context.Background()
	replicas, err := c.Node(t, from).Do(ctx, "cluster", "replicas", fromID).StringSlice()
	if err != nil || len(replicas) == 0 {
		t.Fatalf("the master of slot %d has no replica (%v): start the cluster with StartClusterWithReplicas", slot, err)
	}
	// A line of CLUSTER NODES: <id> <ip:port@bus-port> slave <master> …
	f := strings.Fields(replicas[0])
	if len(f) < 2 {
		t.Fatalf("cluster replicas: %q", replicas[0])
	}
	addr, _, _ := strings.Cut(f[1], "@")
	to := slices.Index(c.Addrs, addr)
	if to < 0 {
		t.Fatalf("replica %s is not a node of the cluster", addr)
	}
	if err := c.Node(t, to).Do(ctx, "cluster", "failover").Err(); err != nil {
		t.Fatalf("cluster failover: %v", err)
	}
	waitUntil(t, "the replica to serve the slot", func() bool {
		_, mine := c.nodeOwns(t, to, slot)
		return mine
	})
	c.waitOK(t)
	return to
}

// waitOK waits until every node says the cluster serves every slot.
func (c *Cluster) waitOK(t testing.TB) {
	t.Helper()
	for _, addr := range c.Addrs {
		waitUntil(t, "cluster node "+addr+" is ok", func() bool {
			node := redis.NewClient(&redis.Options{Addr: addr})
			defer node.Close()
			info, err := node.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
}

// URL is the CHAT_REDIS_URL form of the cluster.
func (c *Cluster) URL() string {
	u := "redis://" + c.Addrs[0]
	for i, addr := range c.Addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + addr
	}
	return u
}

// freePort finds a loopback port nobody listens on. A cluster node also
// needs port+10000 for its bus.
func freePort(t testing.TB, withBus bool) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !withBus {
			return port
		}
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000))); err == nil {
			bus.Close()
			return port
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// waitUntil polls cond until it holds, failing the test at the deadline.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	// An external process offers nothing to block on, so poll.
	deadline := time.After(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

// Proxy forwards loopback TCP to a target (a Redis, or any server) and can
// break the line: its faultproxy.Proxy delays, holds, blackholes or drops;
// Cut and Restore are the partition most tests need.
type Proxy struct {
	// Addr is where clients connect.
	Addr string
	*faultproxy.Proxy
}

// StartProxy listens on a free loopback port and forwards to target; the
// proxy is closed at cleanup.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	fp, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fp.Close(); err != nil {
			t.Errorf("close proxy: %v", err)
		}
	})
	return &Proxy{Addr: fp.Addr(), Proxy: fp}
}

// Cut stops all traffic, on old and new connections, and closes nothing,
// until Restore: a network partition that silently drops packets.
func (p *Proxy) Cut() { p.Blackhole(true) }

// Restore ends the partition and closes every connection that lived
// through it, as clients find after a real one (their side timed out):
// they must reconnect.
func (p *Proxy) Restore() {
	p.Blackhole(false)
	p.DropConnections()
}
