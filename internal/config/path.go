package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

// Path is an option path as a user writes it (disko.devices.disk.main.content): the one
// form in which the loader reports problems and the generator names a script's sections.
// It is a chain of segments, each pointing at the path it extends, and text is built only
// when asked for (String, Short), so that extending a path costs the same at every depth:
// building each path as a string copied its prefix, which made loading a deeply nested
// layout quadratic in its depth (BenchmarkLoadDeep).
type Path struct{ *pathSeg }

type pathSeg struct {
	up  *pathSeg
	seg string // ".name", `."my disk"` or "[3]"; the root's whole text
	run int    // how many nestedSeg in a row end the path; 0 when seg is not one
	// before is the segment before that run: the short form skips the run in one step,
	// so writing it costs the same at any nesting depth.
	before *pathSeg
}

// NewPath is the path whose text is root, such as RootPath.
func NewPath(root string) Path { return Path{&pathSeg{seg: root}} }

// rootPath is disko.devices, where every option path starts.
var rootPath = NewPath(RootPath)

// nestedSeg is the segment that repeats in a deep layout (containers nested in each other).
const nestedSeg = ".content"

// nestedRun is how many nestedSeg in a row the short form writes out before it counts them.
const nestedRun = 4

func (p Path) add(seg string) Path {
	n := &pathSeg{up: p.pathSeg, seg: seg}
	if seg == nestedSeg && p.pathSeg != nil {
		n.run, n.before = 1, p.pathSeg
		if p.run > 0 {
			n.run, n.before = p.run+1, p.before
		}
	}
	return Path{n}
}

// Attr extends the path by an attribute name from the layout, quoted as Nix would need it
// ("my disk"). Line breaks are escaped, so a path can never end a shell comment early.
func (p Path) Attr(name string) Path { return p.add("." + nixlit.AttrName(name)) }

// Field extends the path by option names written in the code ("content",
// "mode.topology"), which need no quoting.
func (p Path) Field(names string) Path { return p.add("." + names) }

// Index extends the path by a list position.
func (p Path) Index(i int) Path { return p.add("[" + strconv.Itoa(i) + "]") }

// IsZero reports whether p is no path at all (the zero Path).
func (p Path) IsZero() bool { return p.pathSeg == nil }

// String is the whole path, as the user would write it, in time linear in its length.
func (p Path) String() string {
	var segs []string
	for s := p.pathSeg; s != nil; s = s.up {
		segs = append(segs, s.seg)
	}
	slices.Reverse(segs)
	return strings.Join(segs, "")
}

// Short is the path for a comment or a message: a run of more than nestedRun ".content"
// is written as "(.content ×N)", so that its length does not grow with the nesting depth
// (every node of a deep layout has a comment and messages).
func (p Path) Short() string {
	var b strings.Builder
	p.writeShort(&b)
	return b.String()
}

func (s *pathSeg) writeShort(b *strings.Builder) {
	switch {
	case s == nil:
	case s.run > nestedRun:
		s.before.writeShort(b)
		fmt.Fprintf(b, "(%s ×%d)", nestedSeg, s.run)
	case s.run > 0:
		s.before.writeShort(b)
		b.WriteString(strings.Repeat(nestedSeg, s.run))
	default:
		s.up.writeShort(b)
		b.WriteString(s.seg)
	}
}
