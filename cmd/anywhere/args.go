package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
)

// pairFlags take two values, as in nixos-anywhere (`--store-paths A B`,
// `--chown PATH OWNER`, …) and disko (`--disk NAME DEVICE`). Only --disk also
// takes NAME=DEVICE in one word, as disko-compile does: the others' values
// are paths and Nix options, which may contain "=".
var pairFlags = map[string]cliargs.PairForm{
	"store-paths": cliargs.Pair, "s": cliargs.Pair, "ssh-store-setting": cliargs.Pair, "chown": cliargs.Pair,
	"disk-encryption-keys": cliargs.Pair, "option": cliargs.Pair, "generate-hardware-config": cliargs.Pair,
	"disk": cliargs.PairOrAssign,
}

// pairSep joins the two values of a two-word flag into the one value
// urfave/cli stores; argv can never contain it.
const pairSep = "\x00"

// normalizeArgs rewrites a command line into the shape urfave/cli parses:
// two-word flags become one value, and flags may follow the host
// (`anywhere root@host --flake .#x`). The host and any other argument go
// after `--`, so an unknown flag is never taken for the host
// (nixos-anywhere's bug), and a flag's value may start with '-'
// (`--kexec-extra-flags --no-sync`).
func normalizeArgs(flags []cli.Flag, args []string) []string {
	return cliargs.Normalize(cliargs.Spec{Flags: flags, Pairs: pairFlags, Sep: pairSep, Separate: true}, args)
}

// splitPair undoes the joining of a two-word flag's values.
func splitPair(v string) (string, string, bool) {
	return strings.Cut(v, pairSep)
}
