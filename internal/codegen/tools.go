package codegen

import (
	"bytes"
	"fmt"
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
// builtin or a function of its script, in the code the script can reach from its
// top-level statements. A function or top-level variable is reached when its name is a
// word anywhere in reached code (functions are also called by name through arguments,
// trap handlers and the teardown plan that destroy evals). The Nix package puts these on
// PATH (Options.PathDirs), with a different PATH for the destroying scripts; exported so
// the Nix layer's tests can check each PATH against the scripts that get it
// (Scripts.Tools is the union over all modes, computed the same way).
func ToolsOf(scripts ...[]byte) ([]string, error) {
	var out []string
	for _, s := range scripts {
		f, err := parseScript(s)
		if err != nil {
			return nil, err
		}
		defined := map[string]bool{}
		syntax.Walk(f, func(n syntax.Node) bool {
			if fd, ok := n.(*syntax.FuncDecl); ok {
				defined[fd.Name.Value] = true
			}
			return true
		})
		for _, st := range f.Stmts {
			for _, v := range assigned(st) {
				defined[v] = true
			}
		}
		chunks, err := chunksOf(s, f, func(name string) bool { return defined[name] })
		if err != nil {
			return nil, err
		}
		_, all, _ := newProgram(chunks).reach("")
		out = append(out, all...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
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
