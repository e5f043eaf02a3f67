// Package nixlit writes Nix literals: strings and attribute names. Every Nix text the
// project writes (the NixOS configuration, the options reference and its examples, option
// paths in messages and script comments) quotes through it, so that one set of escaping
// rules holds everywhere and a value reads back as itself.
package nixlit

import (
	"slices"
	"strings"
)

// String quotes s as a Nix double-quoted string. Every `$` is escaped, which rules out
// interpolation (`${`) whatever follows, and `\$` reads back as `$`; line breaks and tabs
// are written as escapes, so the literal stays on one line (a shell comment holding it
// cannot end early).
func String(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// keywords cannot be bare attribute names.
var keywords = []string{"assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with"}

// IsIdent reports whether Nix reads s as an attribute name without quotes: a letter or _,
// then letters, digits, _, ' and -, and not a keyword. It is a loop rather than a regular
// expression because every option path of a layout goes through it.
func IsIdent(s string) bool {
	if s == "" || slices.Contains(keywords, s) {
		return false
	}
	for i, r := range s {
		letter := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '_'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '\'' || r == '-')) {
			return false
		}
	}
	return true
}

// AttrName writes an attribute name bare when Nix allows it, else quoted ("/boot").
func AttrName(s string) string {
	if IsIdent(s) {
		return s
	}
	return String(s)
}
