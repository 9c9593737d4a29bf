package launch

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Config says how to start a receiver and workers that work together.
type Config struct {
	// Bin holds the receiver and worker binaries (see Build).
	Bin string
	// Dir holds every process's working directory and log.
	Dir string
	// GitHubURL and Token are the API the workers use.
	GitHubURL string
	Token     string
	// WebhookSecret signs deliveries to the receiver.
	WebhookSecret string
	// NATSURL is the JetStream every process uses. When empty, the
	// receiver runs the embedded default on NATSPort and workers join it,
	// as on a single box configured with nothing, its credentials in
	// nats.credentials under Dir. With NATSPort 0 StartReceiver picks the
	// port, and Receiver.NATSPort says which it took.
	NATSURL  string
	NATSPort int
	// Env is added to every process's environment.
	Env []string
}

func (c Config) natsEnv() []string {
	if c.NATSURL != "" {
		return []string{"NATS_URL=" + c.NATSURL}
	}
	return []string{
		"YCI_NATS_PORT=" + strconv.Itoa(c.NATSPort),
		// Where the file is, not what is in it: the password itself never
		// travels in an environment.
		"YCI_NATS_CREDENTIALS=" + filepath.Join(c.Dir, "nats.credentials"),
	}
}

// Receiver is a running receiver and the URL GitHub delivers to.
type Receiver struct {
	*Process
	Addr       string
	WebhookURL string
	// NATSPort is where its embedded JetStream listens, 0 when it uses
	// Config.NATSURL. Workers join it with a Config of this port.
	NATSPort int
}

// StartReceiver starts a receiver and waits until it is healthy. When it
// runs the embedded JetStream on a port it picked (Config.NATSPort 0), a
// start that finds either port taken picks both again.
func (c Config) StartReceiver(ctx context.Context, name string) (*Receiver, error) {
	dir := filepath.Join(c.Dir, name)
	logPath := filepath.Join(c.Dir, name+".log")
	embedded := c.NATSURL == ""
	var natsPort int // the last start's embedded port; 0 when not embedded
	p, addr, err := startListening(ctx, logPath, func(addr string) (*Process, error) {
		rc := c
		if embedded && c.NATSPort == 0 {
			port, err := FreePort()
			if err != nil {
				return nil, err
			}
			rc.NATSPort = port
		}
		if embedded {
			natsPort = rc.NATSPort
		}
		env := append([]string{
			"YCI_LISTEN=" + addr,
			"GITHUB_WEBHOOK_SECRET=" + c.WebhookSecret,
			"YCI_NATS_STORE=" + filepath.Join(dir, "nats"),
		}, rc.natsEnv()...)
		return Start(name, filepath.Join(c.Bin, "receiver"), nil, append(env, c.Env...), dir, logPath)
	})
	if err != nil {
		return nil, err
	}
	return &Receiver{Process: p, Addr: addr, WebhookURL: "http://" + addr + "/webhook", NATSPort: natsPort}, nil
}

// Worker is a running worker, its workspace and where it serves metrics.
type Worker struct {
	*Process
	Workspace   string
	MetricsAddr string
}

// StartWorker starts a worker in its own workspace under Dir, with logs
// linked under httpRoot, and waits until it is healthy.
func (c Config) StartWorker(ctx context.Context, name, httpRoot string, extraEnv ...string) (*Worker, error) {
	ws, logPath := filepath.Join(c.Dir, name), filepath.Join(c.Dir, name+".log")
	p, addr, err := startListening(ctx, logPath, func(addr string) (*Process, error) {
		env := append([]string{
			"GITHUB_ACCESS_TOKEN=" + c.Token,
			"GITHUB_API_URL=" + c.GitHubURL,
			"HTTP_ROOT=" + httpRoot,
			"YCI_METRICS_LISTEN=" + addr,
			"YCI_NATS_STORE=" + filepath.Join(ws, ".yci", "nats"),
		}, c.natsEnv()...)
		env = append(append(env, c.Env...), extraEnv...)
		return Start(name, filepath.Join(c.Bin, "worker"), nil, env, ws, logPath)
	})
	if err != nil {
		return nil, fmt.Errorf("starting worker %s: %w", name, err)
	}
	return &Worker{Process: p, Workspace: ws, MetricsAddr: addr}, nil
}

// startTries bounds how often startListening picks another address.
const startTries = 3

// startListening starts a process that logs to logPath and serves
// /healthz on an address picked free just before, and waits until it is
// healthy. Another process can take the port between the pick and the
// listen (tests start many servers side by side), so a process that exits
// because its address is in use is started again on another, a few times.
func startListening(ctx context.Context, logPath string, start func(addr string) (*Process, error)) (*Process, string, error) {
	for try := 1; ; try++ {
		addr, err := FreeAddr()
		if err != nil {
			return nil, "", err
		}
		logged := logSize(logPath)
		p, err := start(addr)
		if err != nil {
			return nil, "", err
		}
		err = p.WaitHealthy(ctx, "http://"+addr+"/healthz")
		if err == nil {
			return p, addr, nil
		}
		p.Kill()
		if try == startTries || !strings.Contains(p.outputSince(logged), "address already in use") {
			return nil, "", err
		}
	}
}
