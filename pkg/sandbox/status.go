package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrSetup means bubblewrap could not build a command's sandbox or start
// the command in it: the command never ran.
var ErrSetup = errors.New("the sandbox could not be set up")

// statusWait bounds the read of bubblewrap's status once it has exited:
// what it wrote is in the pipe already, and only a sandbox process still
// dying can hold the pipe open.
const statusWait = time.Second

// status reads what bubblewrap writes to --json-status-fd: a document with
// the sandbox's pid as soon as it is cloned, and one with "exit-code" only
// once the command has run and exited. No exit-code means the command
// never ran.
type status struct {
	r, w *os.File
}

func newStatus() (*status, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the sandbox status pipe: %w", err)
	}
	return &status{r: r, w: w}, nil
}

// close releases both ends, for a command that was never started.
func (s *status) close() {
	s.r.Close()
	s.w.Close()
}

// ran closes the pipe and reports whether bubblewrap said the command
// exited; it must be called after bubblewrap has exited.
func (s *status) ran() error {
	defer s.r.Close()
	s.w.Close()
	if err := s.r.SetReadDeadline(time.Now().Add(statusWait)); err != nil {
		return fmt.Errorf("reading the sandbox status: %w", err)
	}
	dec := json.NewDecoder(io.LimitReader(s.r, 64<<10))
	for {
		var doc struct {
			ExitCode *int `json:"exit-code"`
		}
		err := dec.Decode(&doc)
		if err == nil && doc.ExitCode != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: bubblewrap exited before the command ran; its message is in the command's output", ErrSetup)
		}
	}
}
