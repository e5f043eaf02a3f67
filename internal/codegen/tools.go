package codegen

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// bashBuiltins are the commands bash runs itself; everything else a script calls by name
// is either one of its own functions or a program found on PATH.
var bashBuiltins = []string{
	":", "[", "break", "cd", "command", "continue", "declare", "echo", "eval", "exec", "exit", "export",
	"false", "local", "printf", "read", "return", "set", "shift", "test", "trap", "true", "type", "unset", "wait",
}

// ToolsOf lists the programs the given scripts may run, read from their syntax (so the
// list cannot drift from the scripts): the first word of every command that is not a
// builtin or a function of its script, in the code the script can reach. Every script
// embeds the whole runtime, so a command counts only when its function is reachable from
// the script's top level: a function or top-level variable is reached when its name is a
// word anywhere in reached code (functions are also called by name through arguments,
// trap handlers and the teardown plan that destroy evals). The Nix package puts these on
// PATH (Options.PathDirs), with a different PATH for the destroying scripts; exported so
// the Nix layer's tests can check each PATH against the scripts that get it
// (Scripts.Tools is the union over all modes).
func ToolsOf(scripts ...[]byte) ([]string, error) {
	var out []string
	for _, s := range scripts {
		x, err := indexScript(s)
		if err != nil {
			return nil, err
		}
		all, _, err := x.tools("")
		if err != nil {
			return nil, err
		}
		out = append(out, all...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

var shellName = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// scriptIndex is a parsed script: its functions, the top-level statements that only set
// variables (reached through the variable's name), and the statements that run.
type scriptIndex struct {
	funcs map[string][]syntax.Node
	vars  map[string][]syntax.Node
	top   []syntax.Node
}

func indexScript(script []byte) (*scriptIndex, error) {
	f, err := parseScript(script)
	if err != nil {
		return nil, err
	}
	x := &scriptIndex{funcs: map[string][]syntax.Node{}, vars: map[string][]syntax.Node{}}
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok {
			x.funcs[fd.Name.Value] = append(x.funcs[fd.Name.Value], fd.Body)
		}
		return true
	})
	for _, st := range f.Stmts {
		if _, ok := st.Cmd.(*syntax.FuncDecl); ok {
			continue
		}
		if names := assigned(st); names != nil {
			for _, name := range names {
				x.vars[name] = append(x.vars[name], st)
			}
			continue
		}
		x.top = append(x.top, st)
	}
	return x, nil
}

// tools returns the programs reached from the top-level statements and from the names in
// roots (shell text naming functions, such as a script's own calls): all of them, and
// those the script needs. A program is not needed where code only runs it after checking
// for it (`if command -v zpool ...; then zpool ...`).
func (x *scriptIndex) tools(roots string) (all, needed []string, err error) {
	type item struct {
		node     syntax.Node
		optional []string // programs checked for by an enclosing if
	}
	var todo []item
	for _, n := range x.top {
		todo = append(todo, item{node: n})
	}
	seen := map[string]bool{}
	reach := func(text string, optional []string) {
		for _, name := range shellName.FindAllString(text, -1) {
			if !seen["f "+name] && x.funcs[name] != nil {
				seen["f "+name] = true
				for _, body := range x.funcs[name] {
					todo = append(todo, item{body, optional})
				}
			}
			if !seen["v "+name] && x.vars[name] != nil {
				seen["v "+name] = true
				for _, st := range x.vars[name] {
					todo = append(todo, item{st, optional})
				}
			}
		}
	}
	reach(roots, nil)
	add := func(name string, optional []string) {
		if x.funcs[name] != nil || slices.Contains(bashBuiltins, name) {
			return
		}
		all = append(all, name)
		if !slices.Contains(optional, name) {
			needed = append(needed, name)
		}
	}
	for len(todo) > 0 {
		it := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		var visit func(node syntax.Node, optional []string)
		visit = func(node syntax.Node, optional []string) {
			syntax.Walk(node, func(n syntax.Node) bool {
				switch c := n.(type) {
				case *syntax.FuncDecl:
					return false // reached by its name
				case *syntax.IfClause:
					if checked := checkedFor(c.Cond); checked != nil {
						for _, st := range c.Cond {
							visit(st, optional)
						}
						for _, st := range c.Then {
							visit(st, append(slices.Clip(optional), checked...))
						}
						if c.Else != nil {
							visit(c.Else, optional)
						}
						return false
					}
				case *syntax.Lit:
					reach(c.Value, optional)
				case *syntax.SglQuoted:
					reach(c.Value, optional)
				case *syntax.CallExpr:
					if len(c.Args) == 0 {
						break
					}
					lit := c.Args[0].Lit()
					if lit != "" {
						add(lit, optional)
					}
					if lit == "trap" && len(c.Args) > 1 && len(c.Args[1].Parts) == 1 {
						if q, ok := c.Args[1].Parts[0].(*syntax.SglQuoted); ok {
							handler, perr := parseScript([]byte(q.Value))
							if perr != nil {
								err = perr
								return false
							}
							todo = append(todo, item{handler, optional})
						}
					}
				}
				return err == nil
			})
		}
		visit(it.node, it.optional)
		if err != nil {
			return nil, nil, err
		}
	}
	slices.Sort(all)
	slices.Sort(needed)
	return slices.Compact(all), slices.Compact(needed), nil
}

// checkedFor returns the programs an if condition checks for with `command -v NAME`.
func checkedFor(cond []*syntax.Stmt) []string {
	var names []string
	for _, st := range cond {
		syntax.Walk(st, func(n syntax.Node) bool {
			if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) == 3 && c.Args[0].Lit() == "command" && c.Args[1].Lit() == "-v" {
				names = append(names, c.Args[2].Lit())
			}
			return true
		})
	}
	return names
}

func parseScript(script []byte) (*syntax.File, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(script), "")
	if err != nil {
		return nil, fmt.Errorf("a generated script does not parse: %w", err)
	}
	return f, nil
}

// assigned returns the variables a statement only assigns (`x=1 y=2`, `declare -A x=()`),
// or nil when it does anything else: runs a command, redirects, or substitutes a
// command's output (which runs where it stands).
func assigned(st *syntax.Stmt) []string {
	if len(st.Redirs) > 0 || st.Background || st.Negated {
		return nil
	}
	var as []*syntax.Assign
	switch c := st.Cmd.(type) {
	case *syntax.CallExpr:
		if len(c.Args) > 0 {
			return nil
		}
		as = c.Assigns
	case *syntax.DeclClause:
		for _, a := range c.Args {
			if a.Name != nil {
				as = append(as, a)
			} else if a.Value == nil || !strings.HasPrefix(a.Value.Lit(), "-") {
				return nil // a name or option computed at run time
			}
		}
	default:
		return nil
	}
	runs := false
	syntax.Walk(st, func(n syntax.Node) bool {
		switch n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			runs = true
		}
		return !runs
	})
	if runs || len(as) == 0 {
		return nil
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name.Value)
	}
	return names
}
