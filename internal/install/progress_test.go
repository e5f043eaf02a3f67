package install

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/progress"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// fakeClock is a settable clock shared by a Reporter and its Display.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestReporterShowsRunningSteps: a running step is on the terminal's status
// line with its time so far and its progress (secrets redacted), its JSON
// progress events come at most every 200 ms and at least every 5 s, and
// when it ends the status line gives way to the step's line.
func TestReporterShowsRunningSteps(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var screen bytes.Buffer
	disp := progress.New(&screen, progress.Options{TTY: true, Width: 200, Now: c.now})
	red := NewRedactor(disp)
	red.Add("hunter22")
	hook := &eventHook{}
	rep := NewReporter(red, hook)
	rep.now = c.now
	rep.Live(disp, red.Redact)
	defer rep.Close()

	s := rep.Step("install", "copy the system")
	if got := screen.String(); got != "    install: copy the system (0s so far)" {
		t.Errorf("status at the start = %q", got)
	}
	tr := progress.Transfer{Paths: 1, TotalPaths: 4, Bytes: 1 << 20, TotalBytes: 4 << 20, Elapsed: time.Second}
	c.advance(time.Second)
	s.Progress(tr.String()+" hunter22", tr.Data())
	want := "    install: copy the system: 1/4 paths, 1.0 MiB of 4.0 MiB (25%), 1.0 MB/s, 3s left [redacted] (1s so far)"
	if got := screen.String(); !strings.HasSuffix(got, want) {
		t.Errorf("status after progress = %q, want it to end with %q", got, want)
	}
	c.advance(100 * time.Millisecond)
	s.Progress("2/4 paths", map[string]any{"paths_done": 2})
	c.advance(50 * time.Millisecond)
	rep.refresh()
	progressEvents := func() (n int) {
		for _, e := range hook.events {
			if e.Event == "progress" {
				n++
			}
		}
		return n
	}
	if n := progressEvents(); n != 1 {
		t.Errorf("%d progress events within 150 ms of the first, want 1", n)
	}
	c.advance(50 * time.Millisecond)
	rep.refresh() // the pending "2/4 paths"
	if n := progressEvents(); n != 2 {
		t.Fatalf("%d progress events, want 2", n)
	}
	last := hook.events[len(hook.events)-1]
	if last.Message != "2/4 paths" || last.Data["paths_done"] != float64(2) || last.Data["elapsed_s"] != float64(1) {
		t.Errorf("progress event = %+v", last)
	}
	for range 4 { // quiet for 4 s: no new event
		c.advance(time.Second)
		rep.refresh()
	}
	if n := progressEvents(); n != 2 {
		t.Errorf("%d progress events after 4 quiet seconds, want 2", n)
	}
	c.advance(time.Second)
	rep.refresh() // 5 s without one: a heartbeat
	if n := progressEvents(); n != 3 {
		t.Errorf("%d progress events after 5 quiet seconds, want 3 (a heartbeat)", n)
	}

	screen.Reset()
	s.Done(nil)
	if got := screen.String(); got != "\r\x1b[K    install: copy the system (6.2s)\n" {
		t.Errorf("at the end the screen got %q", got)
	}
}

// timedLines records each line written with the time it arrived.
type timedLines struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
	at    []time.Time
}

func (w *timedLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines = append(w.lines, string(w.buf[:i]))
		w.at = append(w.at, time.Now())
		w.buf = w.buf[i+1:]
	}
}

// TestWaitForAnAbsentSystemReports waits for a "new system" that never
// answers SSH, as after a reboot into a machine that does not boot: the
// plain output and the JSON events say every few seconds how long it has
// waited and what the last try got, and the final error says what to check.
func TestWaitForAnAbsentSystemReports(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return l.Addr().String()
	}
	notSSH := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("220 smtp ready\r\n"))
				c.Close()
			}
		}()
		return l.Addr().String()
	}
	for _, c := range []struct {
		name string
		addr func(*testing.T) string
		kind string
	}{
		{"refused", refused, remote.FailTCPRefused},
		{"not ssh", notSSH, remote.FailHandshake},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := c.addr(t)
			human := &timedLines{}
			hook := &eventHook{}
			disp := progress.New(human, progress.Options{})
			rep := NewReporter(disp, hook)
			rep.Live(disp, nil)
			defer rep.Close()
			o := &Options{RebootTimeout: 11 * time.Second,
				SSH: remote.Options{UserConfigFile: "none", SystemConfigFile: "none", Home: t.TempDir()}}
			tg, err := remote.ParseTarget("root@" + addr)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := remote.Resolve(tg, o.SSH)
			if err != nil {
				t.Fatal(err)
			}
			r := &run{o: o, rep: rep, target: tg}
			start := time.Now()
			_, err = r.awaitNewSystem(context.Background(), cfg, nil)

			if err == nil {
				t.Fatal("the wait succeeded")
			}
			for _, want := range []string{"did not answer SSH on " + addr + " within 11s", "the last got: " + c.kind,
				"console", "boot order", "network", "--reboot-timeout"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}

			// Human output: a status line after 5 quiet seconds, then
			// every 5 s; never quiet for more than 6 s.
			prev := start
			var statuses int
			for i, l := range human.lines {
				if gap := human.at[i].Sub(prev); gap > 6500*time.Millisecond {
					t.Errorf("the output was quiet for %s before %q", gap, l)
				}
				prev = human.at[i]
				if strings.Contains(l, "so far") {
					statuses++
					if !strings.Contains(l, "wait for the new system on "+addr) || !strings.Contains(l, "last: "+c.kind) {
						t.Errorf("status line %q does not say what the wait is and what the last try got", l)
					}
				}
			}
			if statuses < 2 {
				t.Errorf("%d status lines in 11 s, want at least 2:\n%s", statuses, strings.Join(human.lines, "\n"))
			}

			// JSON: progress events at least every 5 s, each with the
			// last try's kind.
			prev = start
			var events int
			for _, e := range hook.events {
				if e.Event != "progress" {
					continue
				}
				events++
				if gap := e.Time.Sub(prev); gap > 5500*time.Millisecond {
					t.Errorf("no progress event for %s before %+v", gap, e)
				}
				prev = e.Time
				if e.Data["last"] != c.kind || e.Data["tries"] == nil || e.Data["elapsed_s"] == nil {
					t.Errorf("progress event %+v lacks tries, elapsed_s or last=%q", e.Data, c.kind)
				}
			}
			if events < 3 {
				t.Errorf("%d progress events in 11 s, want at least 3", events)
			}
		})
	}
}
