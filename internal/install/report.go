package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/progress"
)

// Event is one line of --json output: what happened, in which phase and
// step, how long it took. Other tools (CI, Terraform wrappers) read these.
type Event struct {
	Time     time.Time      `json:"time"`
	Event    string         `json:"event"` // phase, step, skipped, progress, warning, plan, done, error
	Phase    string         `json:"phase,omitempty"`
	Step     string         `json:"step,omitempty"`
	Status   string         `json:"status,omitempty"` // ok, failed, skipped
	Duration float64        `json:"duration_s,omitempty"`
	Message  string         `json:"message,omitempty"`
	Error    string         `json:"error,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
}

// Reporter prints progress: one human line per finished step (with its
// duration) on stderr, and with JSON one event per line on the events
// writer. While steps run, the newest one's status (time so far, and what
// it reported with Step.Progress) is shown live on the display, and long
// steps send JSON progress events, so that nothing waits in silence.
// Everything it prints passes through the redactor.
type Reporter struct {
	mu     sync.Mutex
	human  io.Writer
	events io.Writer // nil unless --json
	now    func() time.Time

	live   *progress.Display   // nil: no status line
	redact func(string) string // applied to the status line
	active []*Step             // running steps, oldest first
	stop   chan struct{}       // ends the ticker; nil while none runs
}

// Cadence of the live status: the ticker refreshes it every tick; a step's
// JSON progress events come at most every minEvent (as often as a copy
// reports), and at least every maxEvent while it runs.
const (
	tick     = time.Second
	minEvent = 200 * time.Millisecond
	maxEvent = 5 * time.Second
)

// NewReporter prints human lines to human and, when events is not nil, JSON
// events to it.
func NewReporter(human, events io.Writer) *Reporter {
	return &Reporter{human: human, events: events, now: time.Now}
}

// Live shows the running step's status on d, each text passed through
// redact first (nil: as it is). The human writer should write to d too.
func (r *Reporter) Live(d *progress.Display, redact func(string) string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live, r.redact = d, redact
}

// Close stops the live status and takes it off the display.
func (r *Reporter) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active = nil
	r.stopTicker()
	if r.live != nil {
		r.live.Set("")
	}
}

func (r *Reporter) emit(e Event, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emitLocked(e, line)
}

func (r *Reporter) emitLocked(e Event, line string) {
	e.Time = r.now().UTC()
	if line != "" {
		fmt.Fprintln(r.human, line)
	}
	if r.events != nil {
		b, err := json.Marshal(e)
		if err == nil {
			r.events.Write(append(b, '\n'))
		}
	}
}

// Phase announces a phase.
func (r *Reporter) Phase(phase, what string) {
	r.emit(Event{Event: "phase", Phase: phase, Message: what}, fmt.Sprintf("### %s: %s", phase, what))
}

// PhaseDone says that a phase finished and how long it took.
func (r *Reporter) PhaseDone(phase string, took time.Duration) {
	r.emit(Event{Event: "phase-done", Phase: phase, Status: "ok", Duration: took.Seconds()},
		fmt.Sprintf("### %s: done in %s", phase, progress.Duration(took)))
}

// Skipped says that a phase or step did not run, and why.
func (r *Reporter) Skipped(phase, step, why string) {
	name := phase
	if step != "" {
		name += ": " + step
	}
	r.emit(Event{Event: "skipped", Phase: phase, Step: step, Status: "skipped", Message: why}, fmt.Sprintf("    %s: skipped (%s)", name, why))
}

// Warn reports something the user should know that does not stop the run.
func (r *Reporter) Warn(phase, msg string) {
	r.emit(Event{Event: "warning", Phase: phase, Message: msg}, "warning: "+msg)
}

// Info reports a result (a fingerprint, a path) on its own line.
func (r *Reporter) Info(phase, msg string, data map[string]any) {
	r.emit(Event{Event: "info", Phase: phase, Message: msg, Data: data}, "    "+msg)
}

// Step starts a step; call Done on the result exactly once. Until then it
// is shown live.
func (r *Reporter) Step(phase, step string) *Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	s := &Step{r: r, phase: phase, step: step, start: now, lastEvent: now}
	r.active = append(r.active, s)
	if r.stop == nil && (r.live != nil || r.events != nil) {
		r.stop = make(chan struct{})
		go r.ticker(r.stop)
	}
	r.refreshLocked()
	return s
}

// Plan emits the plan as a JSON event (the human form is printed by the caller).
func (r *Reporter) Plan(p *Plan) {
	if r.events == nil {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	var data map[string]any
	if json.Unmarshal(b, &data) == nil {
		r.emit(Event{Event: "plan", Data: data}, "")
	}
}

// ticker refreshes the live status every tick until stop is closed.
func (r *Reporter) ticker(stop chan struct{}) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.refresh()
		}
	}
}

func (r *Reporter) stopTicker() {
	if r.stop != nil {
		close(r.stop)
		r.stop = nil
	}
}

// refresh redraws the status of the newest running step and sends the
// JSON progress events that are due.
func (r *Reporter) refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshLocked()
}

func (r *Reporter) refreshLocked() {
	now := r.now()
	for _, s := range r.active {
		if r.events == nil {
			break
		}
		since := now.Sub(s.lastEvent)
		if (s.pending && since >= minEvent) || since >= maxEvent {
			r.progressEventLocked(s, now)
		}
	}
	if r.live == nil {
		return
	}
	if len(r.active) == 0 {
		r.live.Set("")
		return
	}
	text := r.active[len(r.active)-1].statusLine(now)
	if r.redact != nil {
		text = r.redact(text)
	}
	r.live.Set(text)
}

func (r *Reporter) progressEventLocked(s *Step, now time.Time) {
	data := map[string]any{"elapsed_s": now.Sub(s.start).Round(time.Second).Seconds()}
	for k, v := range s.progress {
		data[k] = v
	}
	r.emitLocked(Event{Event: "progress", Phase: s.phase, Step: s.step, Message: s.status, Data: data}, "")
	s.pending, s.lastEvent = false, now
}

// Step is a running step.
type Step struct {
	r           *Reporter
	phase, step string
	start       time.Time
	detail      string
	data        map[string]any

	// Live progress, guarded by r.mu.
	status    string         // what it is at, for the status line
	progress  map[string]any // the same for JSON progress events
	pending   bool           // progress not yet sent as an event
	lastEvent time.Time
}

// statusLine is the step's live status: "    phase: step: status (12s so far)".
func (s *Step) statusLine(now time.Time) string {
	line := fmt.Sprintf("    %s: %s", s.phase, s.step)
	if s.status != "" {
		line += ": " + s.status
	}
	return line + fmt.Sprintf(" (%s so far)", now.Sub(s.start).Round(time.Second))
}

// Progress says how far a long step got: text for the status line (e.g.
// "12/340 paths, 1.2 GiB of 3.4 GiB"), data for the JSON progress event
// (sent at most every 200 ms; the ticker sends what is left).
func (s *Step) Progress(text string, data map[string]any) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	s.status, s.progress, s.pending = text, data, true
	r.refreshLocked()
}

// Detail adds a short result to the step's line (e.g. "142 MB at 310 MB/s").
func (s *Step) Detail(detail string, data map[string]any) {
	s.detail = detail
	s.data = data
}

// Done ends the step: ok when err is nil, else failed. It returns err.
func (s *Step) Done(err error) error {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.now().Sub(s.start)
	e := Event{Event: "step", Phase: s.phase, Step: s.step, Duration: d.Seconds(), Data: s.data, Message: s.detail}
	line := fmt.Sprintf("    %s: %s (%s)", s.phase, s.step, progress.Duration(d))
	if s.detail != "" {
		line = fmt.Sprintf("    %s: %s: %s (%s)", s.phase, s.step, s.detail, progress.Duration(d))
	}
	if err != nil {
		e.Status, e.Error = "failed", err.Error()
		line = fmt.Sprintf("    %s: %s FAILED after %s", s.phase, s.step, progress.Duration(d))
	} else {
		e.Status = "ok"
	}
	if i := slices.Index(r.active, s); i >= 0 {
		r.active = slices.Delete(r.active, i, i+1)
	}
	if len(r.active) == 0 {
		r.stopTicker()
		if r.live != nil {
			r.live.Set("")
		}
	}
	r.emitLocked(e, line)
	r.refreshLocked()
	return err
}

// outputWriter prefixes every line a remote command prints, so its output
// stands apart from the step lines.
type outputWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func newOutputWriter(w io.Writer, prefix string) *outputWriter {
	return &outputWriter{w: w, prefix: prefix}
}

func (o *outputWriter) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	for {
		i := bytes.IndexByte(o.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(o.w, "%s%s\n", o.prefix, strings.TrimRight(string(o.buf[:i]), "\r"))
		o.buf = o.buf[i+1:]
	}
	return len(p), nil
}

// Flush prints a last unterminated line.
func (o *outputWriter) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.buf) > 0 {
		fmt.Fprintf(o.w, "%s%s\n", o.prefix, o.buf)
		o.buf = nil
	}
}
