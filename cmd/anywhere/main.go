// Command anywhere installs a NixOS configuration onto a machine reachable
// over SSH, in one command: it formats the disks with the configuration's
// disko layout, copies the system, installs it and reboots into it, then
// checks that the new system answers with the expected host key. Its flags
// are nixos-anywhere's (minus that script's parsing bugs), plus a plan
// (--dry-run), JSON progress (--json) and resumable runs (--state-file,
// --restart).
//
// main only wires the process to run, which takes its dependencies as
// arguments so that tests drive the whole command in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}
