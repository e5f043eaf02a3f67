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
		calls, funcs, err := reachableCalls(s)
		if err != nil {
			return nil, err
		}
		for _, c := range calls {
			if !funcs[c] && !slices.Contains(bashBuiltins, c) {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

var shellName = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// reachableCalls returns the first words of the commands in the code of script that its
// top level can reach, and the names of the functions it defines.
func reachableCalls(script []byte) ([]string, map[string]bool, error) {
	f, err := parseScript(script)
	if err != nil {
		return nil, nil, err
	}
	funcs := map[string][]syntax.Node{}
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok {
			funcs[fd.Name.Value] = append(funcs[fd.Name.Value], fd.Body)
		}
		return true
	})
	// Top-level statements that only set variables run their values' code nowhere, so
	// they are reached through the variable's name; every other statement runs.
	vars := map[string][]syntax.Node{}
	var todo []syntax.Node
	for _, st := range f.Stmts {
		if _, ok := st.Cmd.(*syntax.FuncDecl); ok {
			continue
		}
		if names := assigned(st); names != nil {
			for _, name := range names {
				vars[name] = append(vars[name], st)
			}
			continue
		}
		todo = append(todo, st)
	}
	seen := map[string]bool{}
	reach := func(text string) {
		for _, name := range shellName.FindAllString(text, -1) {
			if !seen["f "+name] && funcs[name] != nil {
				seen["f "+name] = true
				todo = append(todo, funcs[name]...)
			}
			if !seen["v "+name] && vars[name] != nil {
				seen["v "+name] = true
				todo = append(todo, vars[name]...)
			}
		}
	}
	var calls []string
	for len(todo) > 0 {
		node := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		syntax.Walk(node, func(n syntax.Node) bool {
			switch x := n.(type) {
			case *syntax.FuncDecl:
				return false // reached by its name
			case *syntax.Lit:
				reach(x.Value)
			case *syntax.SglQuoted:
				reach(x.Value)
			case *syntax.CallExpr:
				if len(x.Args) == 0 {
					break
				}
				lit := x.Args[0].Lit()
				if lit != "" {
					calls = append(calls, lit)
				}
				if lit == "trap" && len(x.Args) > 1 && len(x.Args[1].Parts) == 1 {
					if q, ok := x.Args[1].Parts[0].(*syntax.SglQuoted); ok {
						handler, perr := parseScript([]byte(q.Value))
						if perr != nil {
							err = perr
							return false
						}
						todo = append(todo, handler)
					}
				}
			}
			return true
		})
		if err != nil {
			return nil, nil, err
		}
	}
	defined := map[string]bool{}
	for name := range funcs {
		defined[name] = true
	}
	return calls, defined, nil
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
