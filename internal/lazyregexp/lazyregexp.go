// Package lazyregexp holds regular expressions that are compiled the first time they are
// used rather than when the program starts. disko-compile runs once per layout, and
// compiling every package-level expression of every linked package at start-up was a
// measurable part of its run time (BenchmarkCompileVsEval), although most runs reach
// only a few of them. Go's own command does the same (its internal/lazyregexp).
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
	compile func() *regexp.Regexp
}

// New returns the regular expression src, not yet compiled.
func New(src string) *Regexp {
	return &Regexp{src: src, compile: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(src) })}
}

// Regexp returns the compiled expression.
func (r *Regexp) Regexp() *regexp.Regexp { return r.compile() }

// MatchString reports whether s contains a match.
func (r *Regexp) MatchString(s string) bool { return r.compile().MatchString(s) }

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (r *Regexp) FindStringSubmatch(s string) []string { return r.compile().FindStringSubmatch(s) }

// String returns the source text, without compiling it.
func (r *Regexp) String() string { return r.src }
