package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// twoWordFlags take two values, as in nixos-anywhere (`--store-paths A B`,
// `--chown PATH OWNER`, …) and disko (`--disk NAME DEVICE`).
var twoWordFlags = map[string]bool{
	"store-paths": true, "s": true, "ssh-store-setting": true, "chown": true,
	"disk-encryption-keys": true, "option": true, "generate-hardware-config": true, "disk": true,
}

// pairSep joins the two values of a two-word flag into the one value
// urfave/cli stores; argv can never contain it.
const pairSep = "\x00"

// normalizeArgs rewrites a command line into the shape urfave/cli parses:
//
//   - two-word flags become one flag with both values joined by pairSep
//     (`--disk NAME=DEVICE` is accepted too, as disko-compile takes it);
//   - flags may follow the host (`anywhere root@host --flake .#x`): urfave/cli
//     v2 stops at the first argument, so flags move before the arguments.
//
// A flag's value is always the next word, even when it starts with '-'
// (`--kexec-extra-flags --no-sync`). Unknown flags are left for urfave/cli
// to reject; they are never taken for the host (nixos-anywhere's bug).
// Everything after `--` is an argument.
func normalizeArgs(flags []cli.Flag, args []string) []string {
	if len(args) == 0 {
		return args
	}
	var flagWords, positional []string
	words := args[1:]
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			positional = append(positional, words[i+1:]...)
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			positional = append(positional, w)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		switch {
		case hasValue || !takesValue(flags, name):
			flagWords = append(flagWords, w)
		case twoWordFlags[name]:
			rest := words[i+1:]
			switch {
			case name == "disk" && len(rest) >= 1 && strings.Contains(rest[0], "="):
				k, v, _ := strings.Cut(rest[0], "=")
				flagWords = append(flagWords, w, k+pairSep+v)
				i++
			case len(rest) >= 2:
				flagWords = append(flagWords, w, rest[0]+pairSep+rest[1])
				i += 2
			case len(rest) == 1:
				flagWords = append(flagWords, w, rest[0])
				i++
			default:
				flagWords = append(flagWords, w)
			}
		case i+1 < len(words):
			flagWords = append(flagWords, w, words[i+1])
			i++
		default:
			flagWords = append(flagWords, w)
		}
	}
	out := append([]string{args[0]}, flagWords...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// takesValue reports whether name is a flag that is not a boolean switch.
func takesValue(flags []cli.Flag, name string) bool {
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

// splitPair undoes the joining of a two-word flag's values.
func splitPair(v string) (string, string, bool) {
	return strings.Cut(v, pairSep)
}
