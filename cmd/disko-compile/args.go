package main

import (
	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
)

// pairFlags are disko's two-word flags (`--arg NAME EXPR`, `--argstr NAME VALUE`,
// `--disk NAME DEVICE`). The flags store NAME=VALUE, so the words are joined with "=",
// and NAME=VALUE in one word is accepted as it is.
var pairFlags = map[string]cliargs.PairForm{
	"arg": cliargs.PairOrAssign, "argstr": cliargs.PairOrAssign, "disk": cliargs.PairOrAssign,
	"size": cliargs.PairOrAssign, "pre-format-files": cliargs.Pair, "post-format-files": cliargs.Pair,
}

// normalizeArgs rewrites a command line into the shape urfave/cli parses, so that the
// habits of disko users keep working: disko's two-word flags, and flags after the layout
// (`disko-compile validate disk.nix --disk main /dev/sda`). Everything after `--` is left
// alone.
func normalizeArgs(app *cli.App, args []string) []string {
	return cliargs.Normalize(cliargs.Spec{Flags: app.Flags, Commands: app.Commands, Pairs: pairFlags, Sep: "="}, args)
}
