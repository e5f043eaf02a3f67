// Command disko-compile turns a disko layout into the artifacts that lay out the disks:
// format, mount, unmount and destroy scripts, the NixOS configuration that mounts them at
// boot, a JSON Schema and an options reference.
//
// main only wires the process to run, which takes its dependencies as arguments so that
// tests drive the whole command in-process.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// exitCode is what run returns: 0 on success, 1 when the layout has problems or a step
// failed, 2 for a command line that could not be understood.
const (
	exitOK      = 0
	exitFailed  = 1
	exitBadArgs = 2
)

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	if err := app.RunContext(ctx, normalizeArgs(app, args)); err != nil {
		fmt.Fprintln(stderr, "disko-compile:", err)
		if cliargs.IsUsageError(err) {
			return exitBadArgs
		}
		return exitFailed
	}
	return exitOK
}
