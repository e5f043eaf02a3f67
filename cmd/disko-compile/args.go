package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs rewrites a command line into the shape urfave/cli parses, so that the
// habits of disko users keep working:
//
//   - `--arg NAME EXPR`, `--argstr NAME VALUE` and `--disk NAME DEVICE` take two words in
//     disko; they become `--arg NAME=EXPR` and so on;
//   - flags may follow the layout (`disko-compile validate disk.nix --disk main=/dev/sda`):
//     urfave/cli v2 stops at the first argument, so flags are moved before the arguments.
//
// Everything after `--` is left alone.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags := app.Flags
	// A command name, if any, is the first word that is not a flag or a flag's value.
	for i := 0; i < len(rest); i++ {
		word := rest[i]
		if !strings.HasPrefix(word, "-") {
			if cmd := app.Command(word); cmd != nil {
				out = append(out, reorder(flags, rest[:i])...)
				out = append(out, word)
				return append(out, reorder(cmd.Flags, rest[i+1:])...)
			}
			break
		}
		if takesValue(flags, word) && !strings.Contains(word, "=") {
			i += valueWords(word, rest[i+1:])
		}
	}
	return append(out, reorder(flags, rest)...)
}

// reorder puts flags (with their values, joined for two-word flags) before positional
// arguments.
func reorder(flags []cli.Flag, words []string) []string {
	var flagWords, positional []string
	for i := 0; i < len(words); i++ {
		word := words[i]
		if word == "--" {
			positional = append(positional, words[i:]...)
			break
		}
		if !strings.HasPrefix(word, "-") || word == "-" {
			positional = append(positional, word)
			continue
		}
		if !takesValue(flags, word) || strings.Contains(word, "=") {
			flagWords = append(flagWords, word)
			continue
		}
		n := valueWords(word, words[i+1:])
		switch n {
		case 2:
			flagWords = append(flagWords, word, words[i+1]+"="+words[i+2])
		case 1:
			flagWords = append(flagWords, word, words[i+1])
		default:
			flagWords = append(flagWords, word)
		}
		i += n
	}
	return append(flagWords, positional...)
}

// valueWords says how many of the following words are the value of flag: two for the
// disko-style two-word flags when the first word has no "=", else one.
func valueWords(flag string, next []string) int {
	name := strings.TrimLeft(flag, "-")
	twoWords := name == "arg" || name == "argstr" || name == "disk"
	switch {
	case len(next) == 0:
		return 0
	case twoWords && !strings.Contains(next[0], "=") && len(next) >= 2:
		return 2
	default:
		return 1
	}
}

// takesValue reports whether word names one of flags that is not a boolean switch.
func takesValue(flags []cli.Flag, word string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(word, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
