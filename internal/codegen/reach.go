package codegen

import (
	"bytes"
	"hash/crc32"
	"iter"
	"slices"
	"strings"
	"sync"

	"mvdan.cc/sh/v3/syntax"
)

// A script is cut into chunks, one per top-level statement with the comments above it,
// and what each chunk needs from the others is worked out once, from its syntax. A script
// then carries only the runtime chunks it reaches, and its programs are read from the
// chunks without parsing the runtime again on every compile: the runtime's chunks are
// computed ahead (runtime_index.go, which TestRuntimeIndex keeps in step with runtime.sh),
// and only the layout's own code is read when a layout is compiled: scanned
// (layoutscan.go), or parsed when it holds shell that the scan does not read.

// indexRuntime cuts runtime.sh into its chunks, as runtime_index.go records them.
// A compile takes them from runtime_index.go, computed ahead; parsing the runtime
// would take most of a compile's time.
func indexRuntime() ([]chunk, error) {
	f, err := parseScript([]byte(runtime))
	if err != nil {
		return nil, err
	}
	// A runtime word may name a function of the layout's code too (all named disko_*).
	chunks, err := chunksOf([]byte(runtime), f, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	defined := newProgram(chunks).byName
	for i := range chunks {
		chunks[i].words = slices.DeleteFunc(chunks[i].words, func(w guarded) bool {
			return defined[w.name] == nil && !strings.HasPrefix(w.name, "disko_")
		})
	}
	chunks[len(chunks)-1].end = len(runtime) // the text after the last statement
	return chunks, nil
}

// runtimeChunks are runtime.sh's chunks: those of runtime_index.go, or when runtime.sh
// was changed without regenerating that file (TestRuntimeIndex fails then), computed
// here, so that a stale index never cuts a script's runtime in the wrong places.
var runtimeChunks = sync.OnceValue(func() []chunk {
	if runtimeSum() == indexedRuntime {
		return indexedChunks
	}
	chunks, err := indexRuntime()
	if err != nil {
		panic("runtime.sh does not parse: " + err.Error()) // the package's own code; TestRuntimeIndex fails too
	}
	return chunks
})

// runtimeSum is the CRC-32 of runtime.sh: it only has to notice an edit of the package's
// own file not followed by -update, which a checksum does, and a compile's first CRC-32
// (CPU instructions, no table to build) takes about 25 µs where SHA-256 took about 40.
func runtimeSum() uint32 {
	return crc32.ChecksumIEEE([]byte(runtime))
}

// guarded is a name that code mentions, with the programs that code checked for around
// the spot (`if command -v NAME ...; then ...`).
type guarded struct {
	name   string
	guards []string
}

// chunk is one top-level statement of a script and what it needs from the rest.
type chunk struct {
	end   int      // where its text ends (the runtime's chunks only; text starts where the previous one ends)
	funcs []string // the functions it declares
	vars  []string // the variables it only assigns
	runs  bool     // it does something where it stands, so every script that holds it runs it
	// words are the names it mentions that may be a function or variable of the script:
	// functions are also called through arguments, trap handlers and eval'd text.
	words []guarded
	cmds  []guarded // the programs it may run: the first word of each command, builtins left out
}

// chunksOf cuts a parsed script (src) into its chunks; keep says which words may name a
// function or variable of the script (others are left out of chunk.words).
func chunksOf(src []byte, f *syntax.File, keep func(string) bool) ([]chunk, error) {
	var chunks []chunk
	for _, st := range f.Stmts {
		c := chunk{end: lineEnd(src, int(st.End().Offset()))}
		if fd, ok := st.Cmd.(*syntax.FuncDecl); ok {
			c.funcs = []string{fd.Name.Value}
		} else if c.vars = assigned(st); c.vars == nil {
			c.runs = true
		}
		if err := c.collect(st, nil, keep, map[string]bool{}); err != nil {
			return nil, err
		}
		c.words = slices.DeleteFunc(c.words, func(w guarded) bool { // its own names
			return slices.Contains(c.funcs, w.name) || slices.Contains(c.vars, w.name)
		})
		chunks = append(chunks, c)
	}
	return chunks, nil
}

// lineEnd is the end of the line that holds offset, its newline included.
func lineEnd(src []byte, offset int) int {
	if i := bytes.IndexByte(src[offset:], '\n'); i >= 0 {
		return offset + i + 1
	}
	return len(src)
}

// collect adds what node mentions and runs, under guards, to the chunk; seen holds what
// the chunk has already.
func (c *chunk) collect(node syntax.Node, guards []string, keep func(string) bool, seen map[string]bool) error {
	var err error
	guardsKey := " " + strings.Join(guards, " ")
	add := func(list *[]guarded, kind, name string) {
		key := kind + name + guardsKey
		if !seen[key] {
			seen[key] = true
			*list = append(*list, guarded{name: name, guards: slices.Clip(guards)})
		}
	}
	word := func(text string) {
		for name := range shellWords(text) {
			if keep(name) {
				add(&c.words, "w ", name)
			}
		}
	}
	syntax.Walk(node, func(n syntax.Node) bool {
		if err != nil {
			return false
		}
		switch x := n.(type) {
		case *syntax.FuncDecl:
			if !slices.Contains(c.funcs, x.Name.Value) {
				c.funcs = append(c.funcs, x.Name.Value) // a function declared inside another
			}
		case *syntax.IfClause:
			if checked := checkedFor(x.Cond); checked != nil {
				inner := append(slices.Clip(guards), checked...)
				for _, st := range x.Cond {
					err = c.collect(st, guards, keep, seen)
				}
				for _, st := range x.Then {
					if err == nil {
						err = c.collect(st, inner, keep, seen)
					}
				}
				if x.Else != nil && err == nil {
					err = c.collect(x.Else, guards, keep, seen)
				}
				return false
			}
		case *syntax.Lit:
			word(x.Value)
		case *syntax.SglQuoted:
			word(x.Value)
		case *syntax.CallExpr:
			if len(x.Args) == 0 {
				break
			}
			lit := x.Args[0].Lit()
			if lit != "" && !slices.Contains(bashBuiltins, lit) {
				add(&c.cmds, "c ", lit)
			}
			if lit == "trap" && len(x.Args) > 1 && len(x.Args[1].Parts) == 1 {
				if q, ok := x.Args[1].Parts[0].(*syntax.SglQuoted); ok {
					handler, perr := parseScript([]byte(q.Value))
					if perr != nil {
						err = perr
						return false
					}
					err = c.collect(handler, guards, keep, seen)
				}
			}
		}
		return true
	})
	return err
}

// shellWords yields the shell names ([A-Za-z_][A-Za-z0-9_]*) in text, one at a time:
// every Lit of the layout's code goes through it, and a slice per Lit was a compile's
// garbage.
func shellWords(text string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := -1
		for i := 0; i <= len(text); i++ {
			var b byte
			if i < len(text) {
				b = text[i]
			}
			switch {
			case start < 0 && isNameByte(b, true):
				start = i
			case start >= 0 && !isNameByte(b, false):
				if !yield(text[start:i]) {
					return
				}
				start = -1
			}
		}
	}
}

// isNameByte reports whether b may stand in a shell name ([A-Za-z_][A-Za-z0-9_]*), as
// its first byte or a later one.
func isNameByte(b byte, first bool) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || !first && b >= '0' && b <= '9'
}

// program is one script's code as chunks: the runtime's, then the layout's own.
type program struct {
	chunks []chunk
	byName map[string][]int // chunks by the functions and variables they define
	funcs  map[string]bool  // every function of the script
	lines  map[string]reached
}

// reached is what prog.reach returns for some roots.
type reached struct {
	chunks      []bool
	all, needed []string
}

// reachLines is prog.reach of the lines joined, worked out once per line for all the
// scripts of a layout, which share most of their lines: what the lines reach together is
// what each reaches alone, put together.
func (p *program) reachLines(lines ...string) (chunks []bool, all, needed []string) {
	chunks = make([]bool, len(p.chunks))
	for _, line := range lines {
		r, ok := p.lines[line]
		if !ok {
			r.chunks, r.all, r.needed = p.reach(line)
			p.lines[line] = r
		}
		for i, c := range r.chunks {
			chunks[i] = chunks[i] || c
		}
		all = append(all, r.all...)
		needed = append(needed, r.needed...)
	}
	slices.Sort(all)
	slices.Sort(needed)
	return chunks, slices.Compact(all), slices.Compact(needed)
}

func newProgram(parts ...[]chunk) *program {
	p := &program{byName: map[string][]int{}, funcs: map[string]bool{}, lines: map[string]reached{}}
	for _, part := range parts {
		p.chunks = append(p.chunks, part...)
	}
	for i, c := range p.chunks {
		for _, f := range c.funcs {
			p.byName[f] = append(p.byName[f], i)
			p.funcs[f] = true
		}
		for _, v := range c.vars {
			p.byName[v] = append(p.byName[v], i)
		}
	}
	return p
}

// reach follows the program from the chunks that run and from the names in roots (shell
// text naming functions, such as a script's own calls). It returns the chunks reached,
// the programs they may run (all), and those a script needs: a program is not needed
// where code runs it only after checking for it (`if command -v zpool ...; then zpool ...`).
func (p *program) reach(roots string) (chunks []bool, all, needed []string) {
	type state struct {
		chunk  int
		guards []string
	}
	type key struct {
		chunk  int
		guards string
	}
	reached := make([]bool, len(p.chunks))
	seen := map[key]bool{}
	var todo []state
	push := func(i int, guards []string) {
		key := key{i, strings.Join(guards, " ")}
		if !seen[key] {
			seen[key] = true
			todo = append(todo, state{i, guards})
		}
	}
	for i, c := range p.chunks {
		if c.runs {
			push(i, nil)
		}
	}
	for name := range shellWords(roots) {
		for _, i := range p.byName[name] {
			push(i, nil)
		}
	}
	for len(todo) > 0 {
		s := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		first := !reached[s.chunk] // a chunk reached again, under other guards, runs the same programs
		reached[s.chunk] = true
		c := &p.chunks[s.chunk]
		for _, cmd := range c.cmds {
			if p.funcs[cmd.name] {
				continue
			}
			if first {
				all = append(all, cmd.name)
			}
			if !slices.Contains(s.guards, cmd.name) && !slices.Contains(cmd.guards, cmd.name) {
				needed = append(needed, cmd.name)
			}
		}
		for _, w := range c.words {
			targets := p.byName[w.name]
			if len(targets) == 0 {
				continue
			}
			guards := s.guards
			if len(w.guards) > 0 {
				guards = slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(guards), w.guards...))))
			}
			for _, i := range targets {
				push(i, guards)
			}
		}
	}
	slices.Sort(all)
	slices.Sort(needed)
	return reached, slices.Compact(all), slices.Compact(needed)
}
