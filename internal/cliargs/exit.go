package cliargs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// ExitError ends a command with Code after printing Msg (if any) on stderr, so the
// disko-compatible commands can exit with the codes and messages disko's scripts use.
type ExitError struct {
	Code int
	Msg  string
}

func (e ExitError) Error() string { return e.Msg }

// RunAsDisko runs app on args as disko's shell scripts behave: no argument at all prints
// the usage and fails; an ExitError exits with its code; every other failure, a command
// line the app cannot read included, exits 1 with the error on stderr.
func RunAsDisko(ctx context.Context, app *cli.App, s Spec, args []string, stderr io.Writer) int {
	if len(args) <= 1 {
		app.RunContext(ctx, []string{app.Name, "--help"})
		return 1
	}
	s.Flags = app.Flags
	err := app.RunContext(ctx, Normalize(s, args))
	var ee ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.Msg != "" {
			fmt.Fprintln(stderr, ee.Msg)
		}
		return ee.Code
	default:
		fmt.Fprintln(stderr, app.Name+":", err)
		if IsUsageError(err) {
			fmt.Fprintf(stderr, "Run '%s --help' for the options.\n", app.Name)
		}
		return 1
	}
}
