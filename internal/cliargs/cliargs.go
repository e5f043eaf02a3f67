// Package cliargs rewrites a command line into the shape urfave/cli v2 parses, and marks
// the errors that mean the command line was not understood.
//
// urfave/cli v2 stops parsing flags at the first argument and gives every flag one word,
// but disko and nixos-anywhere users write `disko-compile validate disk.nix --disk main
// /dev/sda` and `anywhere root@host --store-paths A B`. disko-compile and anywhere keep
// those habits working with the same rules; this package is the one place that holds
// them, so that both commands read a command line the same way.
package cliargs

import (
	"errors"
	"strings"

	"github.com/urfave/cli/v2"
)

// PairForm is how a flag whose value is two words may be written.
type PairForm int

const (
	// Pair is written `--flag A B` only: a first word with "=" is still just A, because
	// the values may contain "=" (paths, Nix options).
	Pair PairForm = iota + 1
	// PairOrAssign is written `--flag A B` or `--flag A=B` (split at the first "="), as
	// `--disk NAME=DEVICE`.
	PairOrAssign
)

// Spec is what differs between the commands that use Normalize.
type Spec struct {
	// Flags are the application's own flags.
	Flags []cli.Flag
	// Commands are its subcommands, if any. The first word that is neither a flag nor a
	// flag's value is a command when one of them has that name; the words after it are
	// read with the command's flags.
	Commands []*cli.Command
	// Pairs names the flags whose value is two words (list every alias). Normalize joins
	// the two with Sep into the one value urfave/cli stores.
	Pairs map[string]PairForm
	// Sep joins the two words of a pair: "=" where the command reads NAME=VALUE anyway,
	// or a byte argv cannot hold ("\x00") where any word may contain "=".
	Sep string
	// Separate puts a `--` before the positional arguments (after the command, if any),
	// so that none of them is ever read as a flag; a `--` in the command line is then
	// dropped and everything after it is positional. Without Separate, a `--` and the
	// words after it stay as they are, after the other positional arguments.
	Separate bool
}

// Normalize rewrites args (args[0] is the program name) so that:
//
//   - flags that follow positional arguments move before them, with their values;
//   - a flag's value is always the next word, even when it starts with '-'
//     (`--kexec-extra-flags --no-sync`);
//   - the two words of a pair flag become one value joined by Spec.Sep.
//
// Unknown flags and boolean flags stay single words for urfave/cli to judge: an unknown
// flag is never taken for an argument, nor its next word for its value. Nothing after
// `--` is read as a flag.
func Normalize(s Spec, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	for i := 0; i < len(rest) && len(s.Commands) > 0; i++ {
		word := rest[i]
		if !strings.HasPrefix(word, "-") {
			if cmd := command(s.Commands, word); cmd != nil {
				out = append(out, s.reorder(s.Flags, rest[:i], false)...)
				out = append(out, word)
				return append(out, s.reorder(cmd.Flags, rest[i+1:], s.Separate)...)
			}
			break
		}
		_, n := s.flag(s.Flags, word, rest[i+1:])
		i += n
	}
	return append(out, s.reorder(s.Flags, rest, s.Separate)...)
}

// reorder puts the flags among words, with their values, before the positional
// arguments.
func (s Spec) reorder(flags []cli.Flag, words []string, separate bool) []string {
	var flagWords, positional []string
	for i := 0; i < len(words); i++ {
		word := words[i]
		if word == "--" {
			if separate {
				positional = append(positional, words[i+1:]...)
			} else {
				positional = append(positional, words[i:]...)
			}
			break
		}
		if !strings.HasPrefix(word, "-") || word == "-" {
			positional = append(positional, word)
			continue
		}
		fw, n := s.flag(flags, word, words[i+1:])
		flagWords = append(flagWords, fw...)
		i += n
	}
	if separate && len(positional) > 0 {
		flagWords = append(flagWords, "--")
	}
	return append(flagWords, positional...)
}

// flag returns the words that stand for the flag word with its value, and how many of
// the following words (next) it took as that value.
func (s Spec) flag(flags []cli.Flag, word string, next []string) ([]string, int) {
	name, _, inline := strings.Cut(strings.TrimLeft(word, "-"), "=")
	if inline || !takesValue(flags, name) || len(next) == 0 {
		return []string{word}, 0
	}
	form := s.Pairs[name]
	if form == PairOrAssign {
		if a, b, ok := strings.Cut(next[0], "="); ok {
			return []string{word, a + s.Sep + b}, 1
		}
	}
	if form != 0 && len(next) >= 2 {
		return []string{word, next[0] + s.Sep + next[1]}, 2
	}
	return []string{word, next[0]}, 1
}

// takesValue reports whether name is one of flags and not a boolean switch.
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

// command returns the command called name, or nil.
func command(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// UsageError marks a command line that could not be understood, so that main exits with
// 2 (fix the command line) rather than 1 (the run failed).
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// IsUsageError reports whether err, or an error it wraps, is a UsageError.
func IsUsageError(err error) bool {
	var u UsageError
	return errors.As(err, &u)
}

// OnUsageError is a cli.OnUsageErrorFunc that marks urfave/cli's own complaints
// (an unknown flag, a bad number) as UsageErrors.
func OnUsageError(_ *cli.Context, err error, _ bool) error { return UsageError{Err: err} }
