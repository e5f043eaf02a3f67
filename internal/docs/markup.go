package docs

import (
	"html"
	"strings"
	"unicode"
)

// The reference is written once, in a small subset of Markdown ("markup"): code spans,
// links to anchors in the same page, **strong**, *emphasis* and backslash escapes. The
// Markdown output uses it as it is; the HTML output and the schema's descriptions parse it
// here. Text that comes from the model (descriptions, tag values) goes through esc or code
// first, so nothing in it is ever read as markup.

// esc makes plain text safe to put into markup.
func esc(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch r {
		case '\\', '`', '*', '[', ']', '<', '>', '|', '&', '~':
			b.WriteByte('\\')
		case '_':
			// GitHub reads an underscore inside a word literally (lvm_vg); escape the rest.
			if i == 0 || i == len(rs)-1 || !isWordRune(rs[i-1]) || !isWordRune(rs[i+1]) {
				b.WriteByte('\\')
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// code is s as a code span.
func code(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || (strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") && strings.TrimSpace(s) != "") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// link is a link to an anchor of the same page; text is markup.
func link(text, anchor string) string { return "[" + text + "](#" + anchor + ")" }

// slug is the anchor GitHub gives a heading with this text: lower case, punctuation other
// than - and _ dropped, spaces turned into hyphens.
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

type inlineKind int

const (
	iText inlineKind = iota
	iCode
	iLink
	iStrong
	iEm
)

type inline struct {
	kind     inlineKind
	text     string // iText, iCode
	href     string // iLink
	children []inline
}

// parseInline reads markup.
func parseInline(s string) []inline {
	var out []inline
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, inline{kind: iText, text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			text.WriteByte(s[i+1])
			i += 2
			continue
		case c == '`':
			n := runLen(s, i, '`')
			if end := findRun(s, i+n, '`', n); end >= 0 {
				flush()
				content := strings.ReplaceAll(s[i+n:end], `\|`, "|")
				if len(content) >= 2 && content[0] == ' ' && content[len(content)-1] == ' ' && strings.TrimSpace(content) != "" {
					content = content[1 : len(content)-1]
				}
				out = append(out, inline{kind: iCode, text: content})
				i = end + n
				continue
			}
			text.WriteString(s[i : i+n])
			i += n
			continue
		case c == '[':
			if close := matchBracket(s, i); close >= 0 && close+1 < len(s) && s[close+1] == '(' {
				if end := strings.IndexByte(s[close+2:], ')'); end >= 0 {
					flush()
					out = append(out, inline{kind: iLink, href: s[close+2 : close+2+end], children: parseInline(s[i+1 : close])})
					i = close + 2 + end + 1
					continue
				}
			}
		case c == '*':
			n := min(runLen(s, i, '*'), 2)
			if end := findRun(s, i+n, '*', n); end > i+n {
				flush()
				kind := iEm
				if n == 2 {
					kind = iStrong
				}
				out = append(out, inline{kind: kind, children: parseInline(s[i+n : end])})
				i = end + n
				continue
			}
		}
		text.WriteByte(c)
		i++
	}
	flush()
	return out
}

func isASCIIPunct(c byte) bool {
	return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0
}

func runLen(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// findRun finds the next run of exactly n c's from i, skipping escaped characters (and,
// for emphasis, code spans), or -1.
func findRun(s string, i int, c byte, n int) int {
	for i < len(s) {
		switch {
		case c != '`' && s[i] == '\\' && i+1 < len(s):
			i += 2
		case c != '`' && s[i] == '`':
			m := runLen(s, i, '`')
			if end := findRun(s, i+m, '`', m); end >= 0 {
				i = end + m
			} else {
				i += m
			}
		case s[i] == c:
			m := runLen(s, i, c)
			if m == n {
				return i
			}
			i += m
		default:
			i++
		}
	}
	return -1
}

// matchBracket finds the ] closing the [ at i, skipping escapes and code spans.
func matchBracket(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '`':
			m := runLen(s, j, '`')
			if end := findRun(s, j+m, '`', m); end >= 0 {
				j = end + m - 1
			} else {
				j += m - 1
			}
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// inlineHTML renders markup as HTML.
func inlineHTML(s string) string {
	var b strings.Builder
	writeInlineHTML(&b, parseInline(s))
	return b.String()
}

func writeInlineHTML(b *strings.Builder, in []inline) {
	for _, x := range in {
		switch x.kind {
		case iText:
			b.WriteString(html.EscapeString(x.text))
		case iCode:
			b.WriteString("<code>" + html.EscapeString(x.text) + "</code>")
		case iLink:
			b.WriteString(`<a href="` + html.EscapeString(x.href) + `">`)
			writeInlineHTML(b, x.children)
			b.WriteString("</a>")
		case iStrong:
			b.WriteString("<strong>")
			writeInlineHTML(b, x.children)
			b.WriteString("</strong>")
		case iEm:
			b.WriteString("<em>")
			writeInlineHTML(b, x.children)
			b.WriteString("</em>")
		}
	}
}

// plainText renders markup as plain text (for anchors and the schema's descriptions).
func plainText(s string) string {
	var b strings.Builder
	writePlain(&b, parseInline(s))
	return b.String()
}

func writePlain(b *strings.Builder, in []inline) {
	for _, x := range in {
		switch x.kind {
		case iText, iCode:
			b.WriteString(x.text)
		default:
			writePlain(b, x.children)
		}
	}
}
