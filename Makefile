# `make test` is the one command that checks everything; CI runs it too.
GO ?= go

.PHONY: test deps check run fuzz bench load load-abuse load-cluster load-soak vulncheck

## test: install what the tests need, check formatting and vet, run every test with -race
test: deps check
	$(GO) test -race -count=1 -timeout 20m ./...

## deps: the tests start real redis-server processes and drive the real
## OpenSSH client inside tmux
deps:
	@if ! command -v tmux >/dev/null || ! command -v ssh >/dev/null || \
		! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then echo "tmux, openssh-client, redis-server and redis-tools are needed: install them (as root: make deps)" >&2; exit 1; fi; \
		apt-get update && apt-get install -y --no-install-recommends tmux openssh-client redis-server redis-tools; \
	fi

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

## run: start a server on :2222 with the in-memory store
run:
	$(GO) run .

## fuzz: explore the sanitisers and the username parsers beyond their seed corpora
fuzz:
	$(GO) test ./internal/safetext -run '^$$' -fuzz FuzzSanitize -fuzztime 60s
	$(GO) test ./internal/safetext -run '^$$' -fuzz FuzzClean -fuzztime 30s
	$(GO) test ./store -run '^$$' -fuzz FuzzParseRoomID -fuzztime 30s
	$(GO) test ./store -run '^$$' -fuzz FuzzParseRejoinName -fuzztime 30s

## bench: the hot paths' benchmarks, six runs each for benchstat (see
## BENCHMARKS.md): a keystroke, an incoming message, a countdown tick and a
## frame written, with allocations; the latency ones report p50/p99/max over
## 300 messages a run. Whole-server figures come from `make load`.
bench:
	$(GO) test ./internal/safetext ./ui/... -run '^$$' -bench 'Sanitize|Keystroke|IncomingMessage|CountdownTick|FrameWrite' -benchmem -count 6
	$(GO) test ./store/redisstore ./server -run '^$$' -bench Latency -benchtime 300x -count 6

## load: the load command's standard runs (BENCHMARKS.md): message latency
## with 0, 1,000 and 10,000 idle sessions and across two replicas on Redis,
## first screens and memory for 1,000 sessions opened at 100/s, idle CPU,
## and Redis's CPU with 10,000 idle seats on two replicas; three runs each
## (one at 10,000), medians last. About 22 minutes. Then load-abuse and
## load-cluster (not load-soak, which takes an hour).
LOAD = $(GO) run ./cmd/chatload
load: deps
	$(LOAD) -scenario latency,connect,idle -sessions 1000
	$(LOAD) -scenario latency -idle 1000
	$(LOAD) -scenario latency -redis -replicas 2
	$(LOAD) -scenario latency,idle -idle 10000 -sessions 10000 -connect-rate 200 -runs 1
	$(LOAD) -scenario idle -redis -replicas 2 -sessions 10000 -connect-rate 200 -runs 1
	$(MAKE) load-abuse
	$(MAKE) load-cluster

## load-abuse: issue 15's runs (BENCHMARKS.md): 80 sessions from 10
## addresses pasting the largest message for a minute, on one replica and
## on two with a 64mb Redis (three runs each); then 100 pairs across two
## replicas while one's Redis replies 2-4 s late for a minute, and one join
## whose reply is held 8 s (three runs). About 20 minutes.
load-abuse: deps
	$(LOAD) -scenario abuse -duration 1m
	$(LOAD) -scenario abuse -redis -redis-maxmemory 64mb -duration 1m
	$(LOAD) -scenario slowredis -redis -duration 1m

## load-cluster: issue 16's runs on a 3-master Redis Cluster the tool
## starts: 10 pairs at 2 msg/s across 4 replicas, the same across 2 (the
## issue's before), and across 4 beside 2,000 idle sessions; latency,
## each node's CPU (also per 1,000 msg/s) and Pub/Sub traffic, three runs
## each. About 8 minutes.
load-cluster: deps
	$(LOAD) -scenario cluster -pairs 10 -rate 2
	$(LOAD) -scenario cluster -pairs 10 -rate 2 -replicas 2
	$(LOAD) -scenario cluster -pairs 10 -rate 2 -idle 2000 -connect-rate 200

## load-soak: an hour of churn (connect, talk, leave and rejoin, reopen,
## destroy, abandon, expire; room TTL 3m) at 2,000 sessions on two replicas
## on Redis; whether goroutines, file descriptors, RSS and Redis's keys and
## memory return to their baseline. About 70 minutes; SOAK=5m for a check.
SOAK ?= 1h
load-soak: deps
	$(LOAD) -scenario soak -redis -duration $(SOAK)

## vulncheck: govulncheck against a vulnerability database built from the
## golang.org/x/vulndb module (works where vuln.go.dev cannot be reached),
## with the Go that go.mod's toolchain line names: the one release builds
## (the image) use, whatever Go is installed here
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
TOOLCHAIN = $(shell sed -n 's/^toolchain //p' go.mod)
vulncheck:
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	rm -rf .vulndb && $(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) \
		-vulns "$$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" -out .vulndb
	GOTOOLCHAIN=$(TOOLCHAIN) $(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db "file://$$(pwd)/.vulndb" ./...
