package docs

import (
	"fmt"
	"strings"
)

// document is the reference as blocks of markup, rendered by markdown.go and html.go, so
// that both formats say exactly the same thing.
type document struct {
	title   string
	blocks  []block
	anchors map[string]bool
	err     error
}

type blockKind int

const (
	bHeading blockKind = iota
	bPara
	bTable
	bCode
	bList
	bTOC     // the table of contents, filled in from the headings when rendering
	bDetails // a code block folded under a one-line summary
)

type block struct {
	kind  blockKind
	level int    // bHeading
	text  string // bHeading, bPara: markup
	id    string // bHeading: its anchor
	head  []string
	rows  [][]string
	lang  string // bCode, bDetails
	code  string // bCode, bDetails: plain text
	items []item // bList
}

type item struct {
	depth int
	text  string
}

func newDocument(title string) *document {
	return &document{title: title, anchors: map[string]bool{}}
}

// heading adds a heading and returns its anchor; a second heading with the same anchor is
// an error, since links to it would be ambiguous.
func (d *document) heading(level int, text string) string {
	id := slug(plainText(text))
	if d.anchors[id] && d.err == nil {
		d.err = fmt.Errorf("docs: two headings have the anchor #%s", id)
	}
	d.anchors[id] = true
	d.blocks = append(d.blocks, block{kind: bHeading, level: level, text: text, id: id})
	return id
}

func (d *document) para(text string) {
	d.blocks = append(d.blocks, block{kind: bPara, text: text})
}

func (d *document) table(head []string, rows [][]string) {
	d.blocks = append(d.blocks, block{kind: bTable, head: head, rows: rows})
}

func (d *document) codeBlock(lang, text string) {
	d.blocks = append(d.blocks, block{kind: bCode, lang: lang, code: strings.TrimRight(text, "\n")})
}

// details adds a code block shown folded, under summary (markup).
func (d *document) details(summary, lang, text string) {
	d.blocks = append(d.blocks, block{kind: bDetails, text: summary, lang: lang, code: strings.TrimRight(text, "\n")})
}

func (d *document) list(items []item) {
	d.blocks = append(d.blocks, block{kind: bList, items: items})
}

func (d *document) toc() {
	d.blocks = append(d.blocks, block{kind: bTOC})
}

// contents lists the headings of levels 2 and 3, as links, for the table of contents and
// the HTML sidebar.
func (d *document) contents() []item {
	var out []item
	for _, b := range d.blocks {
		if b.kind == bHeading && (b.level == 2 || b.level == 3) {
			out = append(out, item{depth: b.level - 2, text: link(b.text, b.id)})
		}
	}
	return out
}
