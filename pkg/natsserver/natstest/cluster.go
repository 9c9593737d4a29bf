package natstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of nats-server binaries, one process per
// node, on loopback ports, as an operator runs three boxes' servers. Node i
// is named "n<i>" (the name JetStream reports as a group's leader) and keeps
// its files in dir/n<i>. Its methods are for the test's goroutine.
type Cluster struct {
	tb    testing.TB
	dir   string
	nodes []*External
}

// StartCluster starts size nodes routed to one another and returns once
// the cluster has elected its JetStream meta leader and can place a
// stream on every node, so streams with replicas can be created at once. Like StartExternal it skips the test
// without a binary, unless YCI_REQUIRE_NATS_SERVER=1. The processes are
// stopped when the test ends.
func StartCluster(tb testing.TB, dir string, size int) *Cluster {
	tb.Helper()
	binary := requireBinary(tb)
	for try := 1; ; try++ {
		c, err := startCluster(tb, binary, dir, size)
		if err == nil {
			c.WaitReady()
			return c
		}
		// The ports were free when picked and closed again for the
		// servers to take; a test running beside this one may take one
		// first. Then every node goes, and the cluster starts afresh.
		if try == portTries || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatal(err)
		}
		tb.Logf("starting the cluster again on other ports: %v", firstLine(err))
	}
}

// portTries bounds how often StartCluster picks new ports after one was
// taken before its server could bind it.
const portTries = 3

// startCluster starts size nodes in dir on ports free a moment ago; on an
// error, every node it started is stopped and its files removed.
func startCluster(tb testing.TB, binary, dir string, size int) (*Cluster, error) {
	c := &Cluster{tb: tb, dir: dir}
	clientPorts, routePorts := make([]int, size), make([]int, size)
	for i := range size {
		var err error
		if clientPorts[i], err = freePort("127.0.0.1"); err != nil {
			return nil, err
		}
		if routePorts[i], err = freePort("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	for i := range size {
		var routes []string
		for j, p := range routePorts {
			if j != i {
				routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
			}
		}
		e := &External{tb: tb, binary: binary, storeDir: filepath.Join(dir, NodeName(i)), port: clientPorts[i], logs: &lockedBuffer{},
			name: NodeName(i), extra: []string{"--cluster_name", "yci", "--cluster", "nats://127.0.0.1:" + strconv.Itoa(routePorts[i]),
				"--routes", strings.Join(routes, ",")}}
		c.nodes = append(c.nodes, e)
	}
	for i := range c.nodes {
		if err := c.tryNode(i); err != nil {
			for _, n := range c.nodes[:i] {
				n.Shutdown()
			}
			for _, n := range c.nodes {
				if rmErr := os.RemoveAll(n.storeDir); rmErr != nil {
					return nil, errors.Join(err, rmErr)
				}
			}
			return nil, fmt.Errorf("starting cluster node %s: %w", NodeName(i), err)
		}
	}
	for _, n := range c.nodes {
		tb.Cleanup(n.cleanup)
	}
	return c, nil
}

// firstLine is err's message up to its first line break.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// NodeName is the server name of node i.
func NodeName(i int) string { return "n" + strconv.Itoa(i) }

// Node returns the index of the node named name, or -1.
func (c *Cluster) Node(name string) int {
	for i := range c.nodes {
		if NodeName(i) == name {
			return i
		}
	}
	return -1
}

func (c *Cluster) startNode(i int) {
	c.tb.Helper()
	if err := c.tryNode(i); err != nil {
		c.tb.Fatalf("starting cluster node %s: %v", NodeName(i), err)
	}
	c.tb.Cleanup(c.nodes[i].cleanup)
}

// tryNode starts node i's process in its directory.
func (c *Cluster) tryNode(i int) error {
	if err := os.MkdirAll(c.nodes[i].storeDir, 0o755); err != nil {
		return err
	}
	return c.nodes[i].start("127.0.0.1")
}

// URL lists every node's client URL, comma-separated, as NATS_URL takes a
// cluster.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// NodeURL is the client URL of node i alone, for a client that must talk
// to that node (as a box whose local server it is).
func (c *Cluster) NodeURL(i int) string { return c.nodes[i].URL() }

// Kill sends SIGKILL to node i, as a box losing power does, and returns
// once the process is gone.
func (c *Cluster) Kill(i int) {
	c.tb.Helper()
	n := c.nodes[i]
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.tb.Fatalf("killing %s: %v", NodeName(i), err)
	}
	<-n.exited
}

// Restart starts node i again, on its ports and files, after Kill.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	old := c.nodes[i]
	c.nodes[i] = &External{tb: c.tb, binary: old.binary, storeDir: old.storeDir, port: old.port, logs: old.logs, name: old.name, extra: old.extra}
	c.startNode(i)
}

// clusterReadyTimeout bounds the wait for a meta leader that can place a
// stream on every node: elections take up to about 9 s on nats-server
// 2.9, and several times that on a box running other tests beside them.
const clusterReadyTimeout = 60 * time.Second

// WaitReady waits until JetStream answers through the cluster (a meta
// leader is elected), failing the test after clusterReadyTimeout.
func (c *Cluster) WaitReady() {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		if lastErr = c.jetStreamAnswers(ctx); lastErr == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling a server that gives no event to wait on
	}
	c.tb.Fatalf("JetStream cluster not ready after %s: %v", clusterReadyTimeout, lastErr)
}

// ask connects to the cluster for one question: JetStream, the context
// the question is asked under (2 s at most), and done, which closes both.
func (c *Cluster) ask(ctx context.Context) (jetstream.JetStream, context.Context, func(), error) {
	nc, err := nats.Connect(c.URL(), nats.Timeout(time.Second))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connecting: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("opening JetStream: %w", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	return js, callCtx, func() { cancel(); nc.Close() }, nil
}

func (c *Cluster) jetStreamAnswers(ctx context.Context) error {
	js, callCtx, done, err := c.ask(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := js.AccountInfo(callCtx); err != nil {
		return fmt.Errorf("asking for account information: %w", err)
	}
	// A meta leader may answer before it knows every peer, and a stream
	// with a replica on each node is then refused ("no suitable peers for
	// placement"): ready means such a stream can be made.
	probe := jetstream.StreamConfig{Name: "natstest_ready", Subjects: []string{"natstest.ready"}, Storage: jetstream.MemoryStorage, Replicas: len(c.nodes)}
	if _, err := js.CreateStream(callCtx, probe); err != nil {
		return fmt.Errorf("placing a stream on all %d nodes: %w", len(c.nodes), err)
	}
	if err := js.DeleteStream(callCtx, probe.Name); err != nil {
		return fmt.Errorf("removing the placement probe: %w", err)
	}
	return nil
}

// Leader returns the node leading stream's group now ("" while it has
// none).
func (c *Cluster) Leader(ctx context.Context, stream string) (string, error) {
	info, err := c.streamCluster(ctx, stream)
	if err != nil {
		return "", err
	}
	return info.Leader, nil
}

// WaitCurrent waits until each of streams (every stream, key-value
// buckets included, when none is named) has a leader and every other
// replica is current, as an operator waits for a node brought back to
// catch up before counting on it, failing the test after
// clusterReadyTimeout. A node still catching up when another dies leaves
// its groups without a quorum: on nats-server 2.9.10 a bucket then stayed
// leaderless for half a minute.
func (c *Cluster) WaitCurrent(streams ...string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		names := streams
		if len(names) == 0 {
			var err error
			if names, err = c.streamNames(ctx); err != nil {
				last = err.Error()
				time.Sleep(100 * time.Millisecond) // polling a server that gives no event to wait on
				continue
			}
		}
		last = ""
		for _, stream := range names {
			info, err := c.streamCluster(ctx, stream)
			if err != nil || info.Leader == "" || len(info.Replicas) != len(c.nodes)-1 || !allCurrent(info.Replicas) {
				last = fmt.Sprintf("stream %s: %+v (%v)", stream, info, err)
				break
			}
		}
		if last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling a server that gives no event to wait on
	}
	c.tb.Fatalf("streams not current on every node after %s: %s", clusterReadyTimeout, last)
}

// streamNames lists the cluster's streams.
func (c *Cluster) streamNames(ctx context.Context) ([]string, error) {
	js, callCtx, done, err := c.ask(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	lister := js.StreamNames(callCtx)
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("listing streams: %w", err)
	}
	return names, nil
}

func allCurrent(peers []*jetstream.PeerInfo) bool {
	for _, p := range peers {
		if !p.Current || p.Offline || p.Lag > 0 {
			return false
		}
	}
	return true
}

func (c *Cluster) streamCluster(ctx context.Context, stream string) (*jetstream.ClusterInfo, error) {
	js, callCtx, done, err := c.ask(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	s, err := js.Stream(callCtx, stream)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", stream, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return nil, fmt.Errorf("stream %s has no cluster information", stream)
	}
	return info.Cluster, nil
}
