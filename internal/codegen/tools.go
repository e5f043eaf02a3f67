package codegen

import (
	"bytes"
	"fmt"
	"slices"

	"mvdan.cc/sh/v3/syntax"
)

// bashBuiltins are the commands bash runs itself; everything else a script calls by name
// is either one of its own functions or a program found on PATH.
var bashBuiltins = []string{
	":", "[", "break", "cd", "command", "continue", "declare", "echo", "eval", "exec", "exit", "export",
	"false", "local", "printf", "read", "return", "set", "shift", "test", "trap", "true", "type", "unset", "wait",
}

// tools lists the programs the scripts may run, read from their syntax (so the list
// cannot drift from the scripts): the first word of every command that is not a builtin
// or a function of the script. The Nix package puts these on PATH (Options.PathDirs).
func tools(scripts ...[]byte) ([]string, error) {
	var out []string
	for _, s := range scripts {
		funcs := map[string]bool{}
		var calls []string
		if err := commands(s, funcs, &calls); err != nil {
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

// commands collects the function names a script defines and the first words of its
// commands, including those of trap handlers (code in a single-quoted string).
func commands(script []byte, funcs map[string]bool, calls *[]string) error {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(script), "")
	if err != nil {
		return fmt.Errorf("a generated script does not parse: %w", err)
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.FuncDecl:
			funcs[x.Name.Value] = true
		case *syntax.CallExpr:
			if len(x.Args) == 0 {
				break
			}
			lit := x.Args[0].Lit()
			if lit != "" {
				*calls = append(*calls, lit)
			}
			if lit == "trap" && len(x.Args) > 1 && len(x.Args[1].Parts) == 1 {
				if q, ok := x.Args[1].Parts[0].(*syntax.SglQuoted); ok {
					err = commands([]byte(q.Value), funcs, calls)
				}
			}
		}
		return err == nil
	})
	return err
}
