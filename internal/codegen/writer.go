package codegen

import (
	"fmt"
	"strings"
)

// writer accumulates indented shell text. It only accepts sh fragments, so layout values
// must have gone through Q to get here.
type writer struct {
	b      strings.Builder
	indent int
}

// linef writes one line; format is a constant of the generator and every argument is sh.
func (w *writer) linef(format string, args ...sh) {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = string(a)
	}
	w.raw(fmt.Sprintf(format, vals...))
}

// raw writes generator-made text, one or more lines, at the current indentation.
func (w *writer) raw(text string) {
	for line := range strings.SplitSeq(text, "\n") {
		if line != "" {
			w.b.WriteString(strings.Repeat("  ", w.indent))
			w.b.WriteString(line)
		}
		w.b.WriteByte('\n')
	}
}

// comment heads a node's section with its option path. optPath escapes every control
// character, so the comment always ends at the end of its line.
func (w *writer) comment(p optPath) {
	w.raw("# " + p.short())
}

// block writes open, the body one level deeper, then close.
func (w *writer) block(open, close sh, body func()) {
	w.linef("%s", open)
	w.indent++
	body()
	w.indent--
	w.linef("%s", close)
}

func (w *writer) String() string { return w.b.String() }

// text renders body into a fresh writer and returns the text.
func text(body func(w *writer)) string {
	var w writer
	body(&w)
	return w.String()
}

// ifElse writes `if COND; then THEN else ELSE fi`.
func (w *writer) ifElse(cond sh, then, els func()) {
	w.linef("if %s; then", cond)
	w.indent++
	then()
	w.indent--
	w.raw("else")
	w.indent++
	els()
	w.indent--
	w.raw("fi")
}
