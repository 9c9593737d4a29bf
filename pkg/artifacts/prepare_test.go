package artifacts

import (
	"os"
	"strings"
	"testing"
)

// TestAppendPrepareLogIsCapped appends far more than MaxPrepareLog: the
// log stops at the limit and says once that it is full.
func TestAppendPrepareLogIsCapped(t *testing.T) {
	t.Parallel()
	const sha = "1111111111111111111111111111111111111111"
	ws, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 1000) + "\n"
	for range 100 {
		if err := ws.AppendPrepareLog("acme", "widget", 3, sha, line); err != nil {
			t.Fatal(err)
		}
	}
	path, err := ws.PrepareLogPath("acme", "widget", 3, sha)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > MaxPrepareLog || !strings.HasSuffix(string(data), "preparation log full; later lines are not kept\n") {
		t.Errorf("log of %d bytes (limit %d) ending %q", len(data), MaxPrepareLog, data[max(0, len(data)-80):])
	}
	if strings.Count(string(data), "log full") != 1 {
		t.Errorf("the log says it is full %d times", strings.Count(string(data), "log full"))
	}
}
