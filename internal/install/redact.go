package install

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
)

// redacted replaces a secret in the output.
const redacted = "[redacted]"

// shortSecret is the length below which a secret is only redacted where it
// stands as a whole token. A substring match of a short secret would also
// hit inside unrelated words ("ab" in "table" printed as "t[redacted]le"),
// which garbles the output and, worse, shows where the secret's letters
// are. A whole token is how a secret leaks in practice (a traced `echo pw`,
// `SUDO_PASSWORD=pw`, a quoted 'pw' in an error), and an unrelated word
// equal to a short secret is redacted too: showing a secret is worse than
// hiding a word.
const shortSecret = 8

// Redactor replaces secret values with "[redacted]" in everything written
// through it, line by line (a secret split across two writes of one line
// is still caught). Secrets of any length are redacted: long ones wherever
// they occur, short ones where they stand as a whole token (see
// shortSecret).
type Redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte // longest first, so a secret containing another wins
	buf     []byte
}

// NewRedactor wraps w.
func NewRedactor(w io.Writer) *Redactor { return &Redactor{w: w} }

// Add registers secret values (each line of a multi-line secret counts on
// its own too, since output is matched line by line). Surrounding blank
// space is not part of a secret; an empty one is ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		for _, part := range append([]string{s}, strings.Split(s, "\n")...) {
			if part = strings.TrimSpace(part); part != "" {
				r.secrets = append(r.secrets, []byte(part))
			}
		}
	}
	// Longest first: "abc" must not turn "abcdef" into "[redacted]def".
	slices.SortStableFunc(r.secrets, func(a, b []byte) int { return len(b) - len(a) })
}

func (r *Redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	i := bytes.LastIndexByte(r.buf, '\n')
	if i < 0 {
		if len(r.buf) < 64<<10 {
			return len(p), nil
		}
		i = len(r.buf) - 1
	}
	out := r.redact(r.buf[:i+1])
	r.buf = append(r.buf[:0], r.buf[i+1:]...)
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is left of an unterminated line.
func (r *Redactor) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return nil
	}
	out := r.redact(r.buf)
	r.buf = nil
	_, err := r.w.Write(out)
	return err
}

// Redact returns s with the secrets replaced, for text that does not pass
// through Write (the live status line).
func (r *Redactor) Redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.redact([]byte(s)))
}

func (r *Redactor) redact(b []byte) []byte {
	for _, s := range r.secrets {
		b = replaceSecret(b, s, len(s) < shortSecret)
	}
	return b
}

// replaceSecret replaces the occurrences of secret in b; with wholeToken,
// only those that do not continue a word: where the secret starts (ends)
// with a letter or digit, the byte before (after) it must not be one.
func replaceSecret(b, secret []byte, wholeToken bool) []byte {
	if !bytes.Contains(b, secret) {
		return b
	}
	if !wholeToken {
		return bytes.ReplaceAll(b, secret, []byte(redacted))
	}
	var out []byte
	rest, done := b, 0
	for {
		i := bytes.Index(rest[done:], secret)
		if i < 0 {
			break
		}
		start, end := done+i, done+i+len(secret)
		leftOK := start == 0 || !isWordByte(secret[0]) || !isWordByte(rest[start-1])
		rightOK := end == len(rest) || !isWordByte(secret[len(secret)-1]) || !isWordByte(rest[end])
		if leftOK && rightOK {
			out = append(out, rest[:start]...)
			out = append(out, redacted...)
			rest, done = rest[end:], 0
			continue
		}
		done = start + 1
	}
	if out == nil {
		return b
	}
	return append(out, rest...)
}

// isWordByte says whether c continues a word: an ASCII letter or digit, or
// a byte of a multi-byte UTF-8 character.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
