// Package lazyregexp holds regular expressions that are compiled the first time they are
// used rather than when the program starts. disko-compile runs once per layout, and
// compiling every package-level expression of every linked package at start-up was a
// measurable part of its run time (BenchmarkCompileVsEval), although most runs reach
// only a few of them. Go's own command does the same (its internal/lazyregexp).
//
// An expression that every compile matches can have a hand-written matcher stand in for
// it (WithMatcher), so that it is never compiled in a user's run; the expression stays
// the definition, which tests hold the matcher to (Disagreement).
package lazyregexp

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled on first use. A syntax error panics then, as
// regexp.MustCompile would at start-up, so a package's tests must reach each of its
// expressions (config's TestRegexpsCompile compiles all of config's).
type Regexp struct {
	src     string
	match   func(string) bool // stands in for the compiled expression in MatchString; may be nil
	compile func() *regexp.Regexp
}

// New returns the regular expression src, not yet compiled.
func New(src string) *Regexp {
	return &Regexp{src: src, compile: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(src) })}
}

// WithMatcher returns the regular expression src whose MatchString is match, a
// hand-written test of the same strings. A compile checks a few short option values
// against expressions such as a size's; compiling each (20-100 µs in a fresh process)
// cost far more than all its matching. A package's tests hold match to src with
// Disagreement.
func WithMatcher(src string, match func(string) bool) *Regexp {
	r := New(src)
	r.match = match
	return r
}

// Regexp returns the compiled expression.
func (r *Regexp) Regexp() *regexp.Regexp { return r.compile() }

// MatchString reports whether s contains a match.
func (r *Regexp) MatchString(s string) bool {
	if r.match != nil {
		return r.match(s)
	}
	return r.compile().MatchString(s)
}

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (r *Regexp) FindStringSubmatch(s string) []string { return r.compile().FindStringSubmatch(s) }

// FindStringIndex is regexp.Regexp.FindStringIndex.
func (r *Regexp) FindStringIndex(s string) []int { return r.compile().FindStringIndex(s) }

// String returns the source text, without compiling it.
func (r *Regexp) String() string { return r.src }

// Disagreement looks for a string on which the matcher of r (WithMatcher) and the
// compiled expression disagree: every string of up to maxLen bytes from alphabet. It
// returns the first one found, and false when they agree on all of them (or r has no
// matcher). The alphabet should hold every byte the expression treats specially and one
// that it refuses everywhere.
func (r *Regexp) Disagreement(alphabet string, maxLen int) (string, bool) {
	if r.match == nil {
		return "", false
	}
	re := r.compile()
	buf := make([]byte, 0, maxLen)
	var walk func() (string, bool)
	walk = func() (string, bool) {
		if s := string(buf); r.match(s) != re.MatchString(s) {
			return s, true
		}
		if len(buf) == maxLen {
			return "", false
		}
		for i := 0; i < len(alphabet); i++ {
			buf = append(buf, alphabet[i])
			s, found := walk()
			buf = buf[:len(buf)-1]
			if found {
				return s, true
			}
		}
		return "", false
	}
	return walk()
}
