package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The lines of the nats/*.conf files the tests replace, as an operator would.
const (
	natsClientListen   = "listen: 0.0.0.0:4222"
	natsRouteListen    = "listen: 0.0.0.0:6222"
	natsMonitor        = "http: 127.0.0.1:8222"
	natsStoreDir       = "store_dir: /var/lib/nats"
	natsYourCIPassword = "CHANGE-ME-yourci-password"
	natsAdminPassword  = "CHANGE-ME-admin-password"
	natsRoutePassword  = "CHANGE-ME-route-password"
)

// startNATS checks conf with `nats-server -t`, as the operator's guide does,
// then runs it and returns once clientAddr accepts connections.
func startNATS(t *testing.T, name, conf, clientAddr string) {
	t.Helper()
	bin := requireBinary(t, "/usr/sbin/nats-server", "YCI_NATS_SERVER", "YCI_REQUIRE_NATS_SERVER")
	path := filepath.Join(t.TempDir(), name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-t", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nats-server -t -c %s: %v\n%s", name, err, out)
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	cmd := exec.Command(bin, "-c", path, "-l", logPath)
	// SIGTERM: nats-server shuts down cleanly, flushing its store.
	p := startProcess(t, cmd, syscall.SIGTERM)
	if !waitListening(clientAddr, p.exited) {
		logged, err := os.ReadFile(logPath)
		if err != nil {
			logged = []byte(err.Error())
		}
		t.Fatalf("nats-server %s did not answer on %s\nlog:\n%s", name, clientAddr, logged)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logged, _ := os.ReadFile(logPath)
			t.Logf("nats-server %s log:\n%s", name, logged)
		}
	})
}

// connect opens a client connection as the yourci user, closed at the end
// of the test.
func connect(t *testing.T, password string, urls ...string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.UserInfo("yourci", password), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to %v: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestNATSSingleNodeConfig(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	client := "127.0.0.1:" + strconv.Itoa(ports[0])
	monitor := "127.0.0.1:" + strconv.Itoa(ports[1])
	store := t.TempDir()
	password := rand.Text()
	conf := substitute(t, "nats/single.conf", readDeployFile(t, "nats/single.conf"),
		natsClientListen, "listen: "+client,
		natsMonitor, "http: "+monitor,
		natsStoreDir, "store_dir: "+store,
		natsYourCIPassword, password,
		natsAdminPassword, rand.Text(),
	)
	startNATS(t, "single", conf, client)

	t.Run("yourci_user_gets_jetstream_with_file_storage_in_store_dir", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		js, err := jetstream.New(connect(t, password, "nats://"+client))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(ctx); err != nil {
			t.Fatalf("JetStream account info: %v", err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "DEPLOY_TEST", Subjects: []string{"deploy.test"}, Storage: jetstream.FileStorage,
		}); err != nil {
			t.Fatalf("creating a file stream: %v", err)
		}
		if _, err := js.Publish(ctx, "deploy.test", []byte("queued work")); err != nil {
			t.Fatalf("publishing: %v", err)
		}
		// Where the operator's guide says to back up.
		streamDir := filepath.Join(store, "jetstream", "YOURCI", "streams", "DEPLOY_TEST")
		if _, err := os.Stat(streamDir); err != nil {
			t.Errorf("stream not stored where the guide says: %v", err)
		}
	})
	t.Run("clients_without_a_password_are_refused", func(t *testing.T) {
		nc, err := nats.Connect("nats://"+client, nats.Timeout(5*time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("an anonymous client connected")
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("anonymous connect = %v, want %v", err, nats.ErrAuthorization)
		}
	})
	t.Run("monitoring_answers_on_localhost", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: processTimeout}).Get("http://" + monitor + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz = %d, want 200", resp.StatusCode)
		}
	})
}

func TestNATSThreeNodeClusterReplicatesAStream(t *testing.T) {
	t.Parallel()
	const members = 3
	ports := freePorts(t, 3*members) // client, route, monitor of each member
	password, routePassword := rand.Text(), rand.Text()
	var routes, clients []string
	for i := range members {
		routes = append(routes, fmt.Sprintf("nats-%d.example.internal:6222", i+1), "127.0.0.1:"+strconv.Itoa(ports[3*i+1]))
		clients = append(clients, "nats://127.0.0.1:"+strconv.Itoa(ports[3*i]))
	}
	for i := range members {
		name := fmt.Sprintf("cluster-%d", i+1)
		client := "127.0.0.1:" + strconv.Itoa(ports[3*i])
		pairs := append([]string{
			natsClientListen, "listen: " + client,
			natsRouteListen, "listen: 127.0.0.1:" + strconv.Itoa(ports[3*i+1]),
			natsMonitor, "http: 127.0.0.1:" + strconv.Itoa(ports[3*i+2]),
			natsStoreDir, "store_dir: " + t.TempDir(),
			natsYourCIPassword, password,
			natsAdminPassword, rand.Text(),
			natsRoutePassword, routePassword,
		}, routes...)
		conf := substitute(t, "nats/"+name+".conf", readDeployFile(t, "nats/"+name+".conf"), pairs...)
		startNATS(t, name, conf, client)
	}

	// Forming the cluster takes a few seconds, and much longer on a box
	// running other tests beside this one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*processTimeout)
	defer cancel()
	js, err := jetstream.New(connect(t, password, clients...))
	if err != nil {
		t.Fatal(err)
	}
	stream := createUntilClusterForms(ctx, t, js, jetstream.StreamConfig{
		Name: "DEPLOY_TEST", Subjects: []string{"deploy.test"}, Storage: jetstream.FileStorage, Replicas: members,
	})
	if _, err := js.Publish(ctx, "deploy.test", []byte("queued work")); err != nil {
		t.Fatalf("publishing: %v", err)
	}

	// Every member holds a replica, and the followers catch up.
	want := []string{"yourci-nats-1", "yourci-nats-2", "yourci-nats-3"}
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		got, current := replicaSet(info)
		if !slices.Equal(got, want) {
			t.Fatalf("stream replicas on %v, want %v", got, want)
		}
		if current && info.State.Msgs == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replicas not current with the leader: %+v", info.Cluster)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createUntilClusterForms creates the stream, retrying while the members
// are still electing a meta leader (which takes a few seconds after start).
func createUntilClusterForms(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		stream, err := js.CreateStream(attempt, cfg)
		cancel()
		if err == nil {
			return stream
		}
		select {
		case <-ctx.Done():
			t.Fatalf("creating a stream with %d replicas: %v", cfg.Replicas, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// replicaSet returns the sorted names of the servers holding the stream and
// whether every follower is current.
func replicaSet(info *jetstream.StreamInfo) ([]string, bool) {
	if info.Cluster == nil {
		return nil, false
	}
	names := []string{info.Cluster.Leader}
	current := true
	for _, r := range info.Cluster.Replicas {
		names = append(names, r.Name)
		current = current && r.Current && !r.Offline
	}
	slices.Sort(names)
	return names, current
}

// TestNATSMonitoringOnlyOnLoopbackWithANote: every shipped configuration
// serves monitoring, if at all, on loopback only, and says what it reveals.
func TestNATSMonitoringOnlyOnLoopbackWithANote(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"single", "cluster-1", "cluster-2", "cluster-3"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conf := readDeployFile(t, "nats/"+name+".conf")
			for _, line := range strings.Split(conf, "\n") {
				line = strings.TrimSpace(line)
				if strings.HasPrefix(line, "#") {
					continue
				}
				for _, key := range []string{"http", "https", "http_port", "https_port", "monitor_port"} {
					if strings.HasPrefix(line, key+":") && !strings.HasPrefix(line, key+": 127.0.0.1:") {
						t.Errorf("monitoring not bound to loopback: %q", line)
					}
				}
			}
			if !strings.Contains(conf, "It reveals stream and consumer configuration, user names") {
				t.Error("no note on what monitoring reveals")
			}
		})
	}
}
