package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
)

// screenshotEnv names a file the browser test saves its screenshot of the
// build page to; default /tmp/buildpage.png.
const screenshotEnv = "YCI_BUILDPAGE_PNG"

// browserBuild is the build the browser test serves: one test passed, one
// running, whose log grows while the page is open.
type browserBuild struct {
	root string // the build's directory in the workspace
	rec  events.BuildRecord
	// others are the records the page may find a successor among.
	others []events.BuildRecord
}

// planCommand is unit's command as .yci.py gave it: author-controlled
// text the page shows as it is.
const planCommand = `./unit.sh --fast <script>alert(1)</script> && echo "ok"`

func newBrowserBuild(t *testing.T, ws string) *browserBuild {
	t.Helper()
	start := time.Now().UTC().Add(-time.Minute)
	b := &browserBuild{root: filepath.Join(ws, "acme/widget/pulls/7/2"), rec: events.BuildRecord{
		Version: events.Version, Key: events.BuildKey{Repo: events.Repo{Owner: "acme", Name: "widget"}, Pull: 7, Build: 2},
		SHA: "0123456789abcdef0123456789abcdef01234567", Title: `Faster <widgets> & "quotes"`, Branch: "faster",
		PullURL: pullURL, Created: start, Updated: start,
		Tests: []events.TestRecord{
			{Name: "unit", State: events.TestPassed, Description: "passed in 1.5s on attempt 2", MaxAttempts: 3, Flaky: true,
				Command: planCommand,
				Attempts: []events.AttemptRecord{
					{Number: 1, Start: start, Duration: 2 * time.Second, Outcome: "failed"},
					{Number: 2, Start: start.Add(5 * time.Second), Duration: 1500 * time.Millisecond, Outcome: "passed"},
				}},
			{Name: "integration", State: events.TestRunning, Description: "running", MaxAttempts: 1,
				Command:  "make integration",
				Attempts: []events.AttemptRecord{{Number: 1, Start: start.Add(10 * time.Second)}}},
		},
		Changes: &events.Changes{Files: []string{"README.md", "<b>bold</b>.go"}, Total: 5},
	}}
	writeFile(t, filepath.Join(b.root, "unit/out.txt"), "attempt 1: flaking\nattempt 2: ok\n")
	writeFile(t, filepath.Join(b.root, "integration/out.txt"), "")
	b.write(t)
	return b
}

// write renders the record into the build's page and state, as the
// worker does at every change.
func (b *browserBuild) write(t *testing.T) {
	t.Helper()
	root, err := os.OpenRoot(b.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state, err := pages.BuildJSON(b.rec)
	if err != nil {
		t.Fatal(err)
	}
	html, err := pages.BuildPage(b.rec, b.others)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"build.json": state, "index.html": html} {
		if err := pages.WriteFile(root, name, data); err != nil {
			t.Fatal(err)
		}
	}
}

// appendLog appends s to the running test's log.
func (b *browserBuild) appendLog(t *testing.T, s string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(b.root, "integration/out.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// pullURL is the browser build's pull request on GitHub: the link is
// checked, not followed, as the test has no network.
const pullURL = "https://github.example/acme/widget/pull/7"

// startBrowser runs Debian's headless Chromium, with no network beyond
// the machine, and returns a context driving one of its tabs.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := requireBinary(t, "/usr/bin/chromium-headless-shell", "YCI_CHROMIUM", "YCI_REQUIRE_CHROMIUM")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // we run as root; the page is our own
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1000, 700),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	return tab
}

// waitText waits until the text of the element matching sel satisfies ok,
// and returns it.
func waitText(t *testing.T, tab context.Context, sel, what string, ok func(string) bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	// Read through the DOM, so a missing element is an empty text and the
	// wait goes on.
	expr := `(document.querySelector(` + strconv.Quote(sel) + `) || {}).textContent || ""`
	var text string
	for {
		var err error
		text, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil && ok(text) {
			return text
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last text of %s %q (%v)", what, sel, text, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestBuildPageInABrowser serves a build whose test is running through the
// real nginx with the shipped configuration, opens its page in headless
// Chromium, and checks that the states show and that the running test's
// log grows on the page as the test writes, without a reload.
func TestBuildPageInABrowser(t *testing.T) {
	t.Parallel()
	tab := startBrowser(t)
	ws := t.TempDir()
	b := newBrowserBuild(t, ws)
	b.appendLog(t, "integration: line 1\n")
	srv := startNginx(t, siteFor(t, ws))
	url := "http://" + srv.addr + "/acme/widget/pulls/7/2/index.html"

	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	// Gone if the page reloads: the log must grow in place.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.loadedOnce = true`)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	t.Run("states_show", func(t *testing.T) {
		waitText(t, tab, "#state-unit", "unit passed", func(s string) bool { return s == "passed (flaky)" })
		waitText(t, tab, "#state-integration", "integration running", func(s string) bool { return s == "running" })
		waitText(t, tab, "#summary", "the summary", func(s string) bool { return s == "pending: 1 passed, 1 running (1 flaky) of 2" })
		waitText(t, tab, "h1 + p", "the escaped title", func(s string) bool { return s == `Faster <widgets> & "quotes"` })
		waitText(t, tab, "#attempts-unit", "unit's attempts", func(s string) bool { return s == "2 of 3#1 failed in 2s#2 passed in 1.5s" })
		waitText(t, tab, "#attempts-integration", "integration's running attempt", func(s string) bool {
			return strings.HasPrefix(s, "1 of 1#1 started ")
		})
	})
	t.Run("plan_shows_commands_attempts_and_changed_files", func(t *testing.T) {
		waitText(t, tab, "#plan-unit pre", "unit's command", func(s string) bool { return s == planCommand })
		waitText(t, tab, "#plan-unit td:nth-child(2)", "unit's attempts", func(s string) bool { return s == "up to 3" })
		waitText(t, tab, "#plan-integration td:nth-child(2)", "integration's attempts", func(s string) bool { return s == "1" })
		waitText(t, tab, "#changes li:nth-child(2)", "the second changed file", func(s string) bool { return s == "<b>bold</b>.go" })
		waitText(t, tab, "#more-changes", "the count of files not listed", func(s string) bool { return s == "… and 3 more." })
	})
	t.Run("links_to_the_pull_and_commit_on_github", func(t *testing.T) {
		// The resolved href of each link, as a click would follow it.
		for sel, want := range map[string]string{
			"#pull-link":   pullURL,
			"#commit-link": "https://github.example/acme/widget/commit/" + b.rec.SHA,
		} {
			if got := hrefOf(t, tab, sel); got != want {
				t.Errorf("%s links to %q, want %q", sel, got, want)
			}
		}
		waitText(t, tab, "#pull-link", "the pull request link", func(s string) bool { return s == "pull request #7 on GitHub" })
	})
	t.Run("re_run_counts_runs", func(t *testing.T) {
		// A re-run of unit while integration still runs: its own
		// allowance of attempts, so the page counts runs, not "3 of 3".
		unit := &b.rec.Tests[0]
		unit.Attempts = append(unit.Attempts, events.AttemptRecord{Number: 1, Rerun: 1, Start: unit.Attempts[1].Start.Add(time.Minute),
			Duration: time.Second, Outcome: "passed"})
		b.write(t)
		waitText(t, tab, "#attempts-unit", "unit's re-run", func(s string) bool {
			return s == "3 runs#1 failed in 2s#2 passed in 1.5sre-run 1 #1 passed in 1s"
		})
	})
	t.Run("running_log_grows_without_a_reload", func(t *testing.T) {
		waitText(t, tab, "#log-integration", "the log so far", func(s string) bool { return s == "integration: line 1\n" })
		b.appendLog(t, "integration: line 2\n")
		b.appendLog(t, "integration: line 3 ünïcödé\n")
		waitText(t, tab, "#log-integration", "the appended lines", func(s string) bool {
			return s == "integration: line 1\nintegration: line 2\nintegration: line 3 ünïcödé\n"
		})
		// Colours show as spans; an OSC 52 clipboard write shows inert.
		b.appendLog(t, "\x1b[1;31mred\x1b[0m plain \x1b]52;c;cHduZWQ=\x07\n")
		waitText(t, tab, "#log-integration span.sgr-bold.sgr-fg1", "the red span", func(s string) bool { return s == "red" })
		log := waitText(t, tab, "#log-integration", "the coloured line", func(s string) bool { return strings.Contains(s, "red plain ") })
		if strings.Contains(log, "\x1b") || !strings.Contains(log, "\u241b]52;c;cHduZWQ=") {
			t.Errorf("raw escape codes on the page, or the OSC 52 not shown: %q", log)
		}
		screenshot(t, tab)
		// The test ends: its last words still arrive, then the page stops.
		b.appendLog(t, "integration: done\n")
		it := &b.rec.Tests[1]
		it.State, it.Description = events.TestPassed, "passed in 1m"
		it.Attempts[0].Duration, it.Attempts[0].Outcome = time.Minute, "passed"
		b.write(t)
		waitText(t, tab, "#state-integration", "integration passed", func(s string) bool { return s == "passed" })
		waitText(t, tab, "#summary", "the final summary", func(s string) bool { return s == "success: 2 passed (1 flaky) of 2" })
		// The attempts and time columns follow too: the attempt that was
		// "started" now has its outcome and duration.
		waitText(t, tab, "#attempts-integration", "the ended attempt", func(s string) bool { return s == "1 of 1#1 passed in 1m" })
		waitText(t, tab, "#time-integration", "the test's time", func(s string) bool { return s == "1m" })
		log = waitText(t, tab, "#log-integration", "the last line", func(s string) bool { return strings.HasSuffix(s, "done\n") })
		if strings.Count(log, "line 1") != 1 {
			t.Errorf("the log was appended twice:\n%s", log)
		}
		loadedOnce, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.loadedOnce === true`))
		if err != nil || !loadedOnce {
			t.Errorf("the page reloaded (marker %v, %v)", loadedOnce, err)
		}
	})
}

// hrefOf is the resolved href of the first element matching sel, "" when
// there is none.
func hrefOf(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	href, err := chromedp.Run(tab, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {}).href || ""`))
	if err != nil {
		t.Fatalf("reading the link %s: %v", sel, err)
	}
	return href
}

// TestSupersededBuildPageLinksItsSuccessorInABrowser opens, through the
// real nginx in headless Chromium, the page of a build a newer push
// superseded, and follows its link to the build that replaced it.
func TestSupersededBuildPageLinksItsSuccessorInABrowser(t *testing.T) {
	t.Parallel()
	tab := startBrowser(t)
	ws := t.TempDir()
	const newSHA = "fedcba9876543210fedcba9876543210fedcba98"
	old := newBrowserBuild(t, ws)
	next := newBrowserBuild(t, ws)
	next.root = filepath.Join(ws, "acme/widget/pulls/7/3")
	next.rec.Key.Build, next.rec.SHA = 3, newSHA
	writeFile(t, filepath.Join(next.root, "integration/out.txt"), "")
	next.write(t)
	it := &old.rec.Tests[1]
	it.State, it.Description, it.SupersededBy = events.TestSuperseded, "stopped: superseded by fedcba9", newSHA
	it.Attempts[0].Duration, it.Attempts[0].Outcome = 4*time.Second, "stopped"
	old.others = []events.BuildRecord{old.rec, next.rec}
	old.write(t)
	srv := startNginx(t, siteFor(t, ws))
	url := "http://" + srv.addr + "/acme/widget/pulls/7/2/index.html"
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	waitText(t, tab, "#summary", "the superseded summary", func(s string) bool { return strings.HasPrefix(s, "superseded: superseded by fedcba9") })
	waitText(t, tab, "#successor", "the successor", func(s string) bool { return s == "Replaced by build 3 of commit fedcba987654." })
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#successor a"))); err != nil {
		t.Fatalf("following the link to the successor: %v", err)
	}
	waitText(t, tab, "h1", "the successor's page", func(s string) bool { return s == "acme/widget #7 build 3" })
	if got := hrefOf(t, tab, "#commit-link"); got != "https://github.example/acme/widget/commit/"+newSHA {
		t.Errorf("the successor's commit links to %q", got)
	}
}

// screenshot saves the page as PNG for people to look at.
func screenshot(t *testing.T, tab context.Context) {
	t.Helper()
	shot := os.Getenv(screenshotEnv)
	if shot == "" {
		shot = "/tmp/buildpage.png"
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Logf("saving the screenshot: %v", err)
	}
}
