// Package progress shows what a long step is doing while it runs, so that
// no wait is silent: on a terminal as one status line redrawn in place
// below the ordinary output, elsewhere (a log file, CI) as a plain line
// whenever the output has been quiet for a few seconds.
package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// DefaultQuiet is how long the plain (non-terminal) output may stay quiet
// before the status is printed as a line of its own: well under the 10 s a
// user should ever wait without news.
const DefaultQuiet = 5 * time.Second

// Options configure a Display; the zero value is a plain display with the
// real clock.
type Options struct {
	// TTY redraws the status in place (the writer is a terminal).
	TTY bool
	// Width is the terminal's width in columns, for cutting the status
	// line short (a wrapped line cannot be redrawn); 0 asks the terminal,
	// or assumes 80.
	Width int
	// Quiet is the plain mode's silence before a status line (DefaultQuiet).
	Quiet time.Duration
	// Now is the clock (time.Now); tests inject their own.
	Now func() time.Time
}

// redrawEvery limits a terminal's redraws when the status changes fast
// (a copy reports several times a second).
const redrawEvery = 100 * time.Millisecond

// Display is a writer for the ordinary output with a status line under
// it. Write the output through it (it keeps the status out of the way);
// set the status with Set. It is safe for concurrent use.
type Display struct {
	mu      sync.Mutex
	w       io.Writer
	o       Options
	status  string
	drawn   bool      // TTY: the status line is on the screen
	drawnAt time.Time // TTY: when it was last drawn
	partial bool      // the last output did not end its line
	held    int       // Hold calls not yet released
	lastOut time.Time // plain: when the last line was written
}

// New returns a display writing to w.
func New(w io.Writer, o Options) *Display {
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TTY && o.Width <= 0 {
		o.Width = 80
		if f, ok := w.(*os.File); ok {
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
				o.Width = int(ws.Col)
			}
		}
	}
	return &Display{w: w, o: o, lastOut: o.Now()}
}

// For returns w itself when it already is a Display, else a new Display
// over w, live when w is a terminal.
func For(w io.Writer) *Display {
	if d, ok := w.(*Display); ok {
		return d
	}
	return New(w, Options{TTY: IsTerminal(w)})
}

// IsTerminal reports whether w is a terminal that can redraw a line (not
// TERM=dumb). It asks the tty driver, as golang.org/x/term does: a
// character device such as /dev/null is not a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// TTY reports whether the display redraws its status in place.
func (d *Display) TTY() bool { return d.o.TTY }

// Write writes ordinary output. On a terminal the status line is taken
// away first and drawn again below the output once its line is complete.
func (d *Display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.erase()
	n, err := d.w.Write(p)
	if len(p) > 0 {
		d.partial = p[len(p)-1] != '\n'
		d.lastOut = d.o.Now()
	}
	d.draw(true)
	return n, err
}

// Set shows status as what is going on now; "" shows nothing. On a
// terminal it is redrawn in place (at most every 100 ms unless forced by a
// new line of output); elsewhere it is printed as a line of its own when
// nothing was written for Quiet.
func (d *Display) Set(status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	status = strings.TrimRight(strings.ReplaceAll(status, "\n", " "), " ")
	if strings.TrimSpace(status) == "" {
		d.erase()
		d.status = ""
		return
	}
	d.status = status
	if d.o.TTY {
		d.draw(false)
		return
	}
	if d.held == 0 && !d.partial && d.o.Now().Sub(d.lastOut) >= d.o.Quiet {
		io.WriteString(d.w, status+"\n")
		d.lastOut = d.o.Now()
	}
}

// Hold takes the status line away until the returned release is called,
// e.g. while a question waits for an answer on the terminal. The cursor is
// then taken to be at the start of a line again.
func (d *Display) Hold() (release func()) {
	d.mu.Lock()
	d.erase()
	d.held++
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.held--
			d.partial = false
			d.lastOut = d.o.Now()
			d.draw(true)
		})
	}
}

// erase removes the status line from the terminal.
func (d *Display) erase() {
	if d.drawn {
		io.WriteString(d.w, "\r\x1b[K")
		d.drawn = false
	}
}

// draw puts the status line on the terminal, unless it was drawn less than
// redrawEvery ago (force ignores that), a line of output is unfinished, or
// the display is held.
func (d *Display) draw(force bool) {
	if !d.o.TTY || d.status == "" || d.partial || d.held > 0 {
		return
	}
	now := d.o.Now()
	if d.drawn && !force && now.Sub(d.drawnAt) < redrawEvery {
		return
	}
	var b bytes.Buffer
	if d.drawn {
		b.WriteString("\r\x1b[K")
	}
	b.WriteString(cut(d.status, d.o.Width-1))
	d.w.Write(b.Bytes())
	d.drawn, d.drawnAt = true, now
}

// cut shortens s to at most n columns (runes), ending it with "…".
func cut(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
