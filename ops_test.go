package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/internal/waitfor"
)

// The operations listener as an operator sees it, on the real binary: the
// health and readiness an orchestrator probes, the metrics moving with a
// real chat over SSH, the end counted by its reason, and on SIGTERM the
// replica saying it is not ready while it still runs, then exiting 0.
func TestOperationsListenerFollowsAChatAndTheDrain(t *testing.T) {
	cmd := replicaProcess(t, nil, "-http", "127.0.0.1:0")
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	started := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+) http=(127\.0\.0\.1:\d+)`)
	lines := make(chan string, 100)
	go func() {
		scanner := bufio.NewScanner(logs)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	var addr, opsAddr string
	var allLogs strings.Builder
	for addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited:\n%s", allLogs.String())
			}
			allLogs.WriteString(line + "\n")
			if m := started.FindStringSubmatch(line); m != nil {
				addr, opsAddr = m[1], m[2]
			}
		case <-time.After(waitLimit):
			t.Fatalf("no startup line:\n%s", allLogs.String())
		}
	}
	base := "http://" + opsAddr
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	metric := func(name string) float64 {
		t.Helper()
		_, body := get(ops.MetricsPath)
		for _, line := range strings.Split(body, "\n") {
			if value, ok := strings.CutPrefix(line, name+" "); ok {
				v, err := strconv.ParseFloat(value, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return v
			}
		}
		return 0
	}
	waitMetric := func(name string, want float64) {
		t.Helper()
		if !waitfor.Within(waitLimit, func() bool { return metric(name) == want }) {
			t.Fatalf("%s is %v, want %v", name, metric(name), want)
		}
	}
	if code, _ := get(ops.HealthPath); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	if code, _ := get(ops.ReadyPath); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
	// The image's HEALTHCHECK: the binary asks itself.
	if err := healthcheckCommand(t, "-http", opsAddr); err != nil {
		t.Fatalf("chat healthcheck against a live server: %v", err)
	}

	alice, aliceKeys := openChat(t, addr, "alice")
	id := alice.waitFor(t, func(s string) string { return roomIDPattern.FindString(s) })
	bob, bobKeys := openChat(t, addr, id)
	bob.waitFor(t, contains("you joined"))
	waitMetric("chat_sessions", 2)
	waitMetric("chat_rooms_created_total", 1)
	io.WriteString(aliceKeys, "hello from alice\r")
	bob.waitFor(t, contains("hello from alice"))
	waitMetric("chat_messages_total", 1)
	waitMetric("chat_message_delivery_seconds_count", 1)
	io.WriteString(bobKeys, "\x03") // bob leaves
	bob.waitFor(t, contains("You left the room"))
	waitMetric("chat_sessions", 1)
	waitMetric(`chat_sessions_ended_total{reason="left"}`, 1)

	// SIGTERM: not ready at once, while the process still runs and
	// alice's screen is told; then a clean exit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, waitLimit, "readyz to say it is draining", func() bool {
		code, body := get(ops.ReadyPath)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	alice.waitFor(t, contains("The server is shutting down"))
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("the server exited with %v after SIGTERM, want 0", exitErr)
		}
	case <-time.After(waitLimit):
		t.Fatal("the server did not exit after SIGTERM")
	}
	for line := range lines {
		allLogs.WriteString(line + "\n")
	}
	for _, want := range []string{"msg=draining", "reason=left", "reason=shutdown", "msg=stopped"} {
		if !strings.Contains(allLogs.String(), want) {
			t.Errorf("no %q in the logs:\n%s", want, allLogs.String())
		}
	}
	// Dead: the healthcheck fails.
	if err := healthcheckCommand(t, "-http", opsAddr); err == nil {
		t.Error("chat healthcheck passed with the server gone")
	}
}

var roomIDPattern = regexp.MustCompile(`[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}`)

// healthcheckCommand runs `chat healthcheck` as the image does.
func healthcheckCommand(t *testing.T, args ...string) error {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"healthcheck"}, args...)...)
	cmd.Env = append(os.Environ(), "CHAT_TEST_BE_SERVER=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run chat healthcheck: %v", err)
	}
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}
