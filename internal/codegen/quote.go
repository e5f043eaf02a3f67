package codegen

import (
	"fmt"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// sh is a fragment of shell text that the generator wrote itself: a literal command, a
// variable reference, or the output of Q. Keeping it a distinct type means a user value
// (a plain string) cannot reach the script text without going through Q: the writer's
// methods only take sh.
type sh string

// Q quotes s as one shell word whose value is exactly s. It is the only way a value that
// came from the layout enters a generated script.
//
// Most values are quoted by shell.Quote, the quoting every command line of the project
// uses: plain words stay bare, so that the scripts stay readable (`mkfs.ext4`,
// `/dev/sda`, `size=2G`), and everything else goes in single quotes, inside which bash
// interprets nothing (`$(...)`, backticks, globs and non-ASCII bytes are all literal). A
// value with a control character (a newline, a tab, ...) is written in bash's $'...'
// form instead, with the control characters as escapes, so that no quoted word ever spans
// two lines of a script: the generator indents lines, and an indented continuation line
// would change the value. `=` is plain because the generator never puts a quoted value
// first on a command line, where `a=b` would be an assignment.
func Q(s string) sh {
	if strings.IndexFunc(s, isControl) >= 0 {
		return ansiC(s)
	}
	return sh(shell.Quote(s))
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f }

// ansiC quotes s as $'...': backslash and single quote escaped, control bytes as \xHH,
// everything else as it is.
func ansiC(s string) sh {
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return sh(b.String())
}

// qKey quotes s in single quotes even when it would be safe bare: the subscript of an
// associative array assignment, where bash's and other parsers' rules differ (a bare
// `[com.sun:auto-snapshot]` reads as arithmetic to some).
func qKey(s string) sh {
	if q := Q(s); strings.HasPrefix(string(q), "'") || strings.HasPrefix(string(q), "$'") {
		return q
	}
	return sh("'" + s + "'")
}

// words quotes every element of list as its own word and joins them with spaces.
func words(list []string) sh {
	var b strings.Builder
	for i, s := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(Q(s)))
	}
	return sh(b.String())
}

// splitWords quotes list the way disko passes it where disko writes `${toString list}`:
// the elements are joined with spaces and split again at whitespace, so ["-d raid1"]
// gives the two arguments -d and raid1 (disko's luks-btrfs-raid example depends on this).
// Each resulting word is quoted: nothing is expanded, globbed or executed.
func splitWords(list []string) sh {
	return words(strings.Fields(strings.Join(list, " ")))
}

// optPath is config.Path, the option path a script section belongs to, with the methods
// the generator writes it with: the same chain, quoting and short form as the loader's.
type optPath struct{ config.Path }

// newOptPath is the path whose text is root, such as config.RootPath.
func newOptPath(root string) optPath { return optPath{config.NewPath(root)} }

// attr appends an attribute name, quoted as Nix would need it ("my disk").
func (p optPath) attr(name string) optPath { return optPath{p.Attr(name)} }

// field appends a fixed option name written by the generator.
func (p optPath) field(name string) optPath { return optPath{p.Field(name)} }

// index appends a list position.
func (p optPath) index(i int) optPath { return optPath{p.Index(i)} }

// short is the path's short form for comments and messages (config.Path.Short).
func (p optPath) short() string { return p.Short() }

// q quotes the path for use as a shell word (it only ever holds escaped characters, but
// a quoted name such as "a b" still needs quotes), in its short form: scripts pass paths
// to messages, and every node of a deeply nested layout has one.
func (p optPath) q() sh { return Q(p.short()) }
