// Package shell turns values into words of a shell command line.
//
// It is the one audited place where a value becomes a shell word. The generated disk
// scripts (through codegen's Q), the commands run on install targets, and the commands
// the test rigs run in their guests all quote through Quote, so that a review, a test or
// a fix here covers every one of them, instead of several copies that drift.
package shell

import "strings"

// Quote returns s as one word for any POSIX shell (dash, busybox sh, bash, zsh in sh
// mode) whose value is exactly s.
//
// Words made only of characters that no shell treats specially are left bare, so that
// command lines stay readable (`/dev/sda`, `size=2G`, `root@host`); everything else is
// put in single quotes, inside which a POSIX shell interprets nothing, not even a
// newline. A single quote inside the value closes the quotes, is written escaped, and
// reopens them:
//
//	it's  ->  'it'\''s'
//
// `=` counts as plain: a bare `a=b` is an assignment when it is the first word of a
// command, so callers quote only arguments, never the command name from a value.
func Quote(s string) string {
	if bare(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plain are the characters besides ASCII letters and digits that mean nothing to a shell
// in any position of an argument. Everything else has a meaning somewhere: whitespace,
// quotes, $ ` \ ! & ; | < > ( ) { } [ ] * ? ~ # ^, and every byte outside printable
// ASCII (which some shells' locales read as something else).
const plain = "@%+=:,./_-"

// bare reports whether s can stand as a word as it is.
func bare(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(plain, c) >= 0) {
			return false
		}
	}
	return true
}
