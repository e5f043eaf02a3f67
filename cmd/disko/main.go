// Command disko is a drop-in for nix-community/disko's `disko` command: the same command
// line (`disko --mode destroy,format,mount ./disk-config.nix`, --flake, --arg, --argstr,
// --root-mountpoint, --dry-run, --no-deps, --yes-wipe-all-disks, --debug), the same exit
// codes, but the layout is compiled in-process (internal/eval, internal/config,
// internal/codegen) instead of built into a Nix store script.
//
// main only wires the process to run, which takes its dependencies as arguments so that
// tests drive the whole command in-process.
package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args, env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, runScript: runScript,
	}))
}

// env is what the command needs from the process: its streams, its environment and a
// way to run a script.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// runScript runs bash on the script file with args and returns its exit code; err
	// is set only when bash could not be started.
	runScript func(ctx context.Context, e env, file string, args []string, debug bool) (int, error)
}

// runScript runs the script with bash, attached to the command's own streams (the
// destroy script asks for consent on the terminal), and passes its exit code on as
// disko does by exec'ing the script.
func runScript(ctx context.Context, e env, file string, args []string, debug bool) (int, error) {
	bashArgs := []string{file}
	if debug {
		bashArgs = []string{"-x", file}
	}
	cmd := exec.CommandContext(ctx, "bash", append(bashArgs, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	// SIGINT reaches the script through the terminal; the command waits for it.
	signal.Ignore(os.Interrupt)
	defer signal.Reset(os.Interrupt)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
