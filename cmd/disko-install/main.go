// Command disko-install is a drop-in for nix-community/disko's `disko-install`: it
// installs a flake's NixOS configuration onto local disks, such as a USB stick, in one
// command. It compiles the configuration's disko layout for the disks given with --disk
// (internal/eval, internal/config, internal/codegen), formats (or only mounts) them,
// builds the system, copies its closure into the new store (internal/closure),
// installs it the way anywhere's install phase does (internal/install), copies
// --extra-files and unmounts.
//
// main only wires the process to run, which takes its dependencies as arguments so that
// tests drive the whole command in-process.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args, env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, geteuid: os.Geteuid,
	}))
}

// env is what the command needs from the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	geteuid        func() int
}
