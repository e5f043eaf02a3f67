package codegen

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

// shellcheckExclusions are the shellcheck warnings the generated scripts may trigger, each
// with the reason it does not apply.
// It is empty: where a warning is a false positive (the variables a hook reads through
// eval), the generated script says so with a directive comment at that spot.
var shellcheckExclusions = map[string]string{}

// runtimeStub stands in for the runtime library when shellcheck reads a generated
// script: the library's chunks are byte for byte those of runtime.sh (checkScript asserts
// it), checked once on their own by TestRuntimeShellcheck; shellcheck takes half a second
// per copy of it. The stub declares what generated code reads from the library.
const runtimeStub = "# shellcheck disable=SC2034 # the stub declares what generated code may read\ndisko_fresh=''\n"

// checkScript parses a script with mvdan.cc/sh (bash dialect) and runs shellcheck on it.
func checkScript(t *testing.T, name string, script []byte) {
	t.Helper()
	file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(script), name)
	if err != nil {
		t.Errorf("%s does not parse: %v", name, err)
	} else {
		for _, pos := range racyPipes(file) {
			t.Errorf("%s:%s: echo or printf piped into a command that may exit without reading: under pipefail the writer can die of SIGPIPE and fail the script; use a here-string", name, pos)
		}
	}
	start, end, _, err := runtimeSection(script)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Every function the script calls is in it: ToolsOf would list a missing one as a program.
	tools, err := ToolsOf(script)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		if runtimeNames()[tool] || strings.HasPrefix(tool, "disko_") {
			t.Errorf("%s runs %s, which it does not define", name, tool)
		}
	}
	stubbed := slices.Concat(script[:start], []byte(runtimeStub), script[end:])
	shellcheck(t, name, stubbed)
}

// wholeReaders are the commands the scripts pipe into that read all their input (sfdisk
// reads its script to the end before it writes).
var wholeReaders = map[string]bool{"base64": true, "sfdisk": true}

// racyPipes returns where a script pipes echo or printf into a command that may not read
// its input: the scripts run under pipefail, so such a pipeline fails when the reader
// exits first (mdadm --create did, in CI).
func racyPipes(file *syntax.File) []syntax.Pos {
	var found []syntax.Pos
	command := func(s *syntax.Stmt) string {
		if call, ok := s.Cmd.(*syntax.CallExpr); ok && len(call.Args) > 0 {
			return call.Args[0].Lit()
		}
		return ""
	}
	syntax.Walk(file, func(node syntax.Node) bool {
		pipe, ok := node.(*syntax.BinaryCmd)
		if !ok || pipe.Op != syntax.Pipe {
			return true
		}
		if writer := command(pipe.X); (writer == "echo" || writer == "printf") && !wholeReaders[command(pipe.Y)] {
			found = append(found, pipe.OpPos)
		}
		return true
	})
	return found
}

func shellcheck(t *testing.T, name string, script []byte) {
	t.Helper()
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		return
	}
	args := []string{"--shell=bash"}
	if len(shellcheckExclusions) > 0 {
		var exclude []string
		for code := range shellcheckExclusions {
			exclude = append(exclude, code)
		}
		args = append(args, "--exclude="+strings.Join(exclude, ","))
	}
	cmd := exec.Command(sc, append(args, "-")...)
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", name, err, out)
	}
}

// TestRuntimeShellcheck checks the runtime library that every script embeds.
func TestRuntimeShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck is not installed (Debian: shellcheck)")
	}
	shellcheck(t, "runtime.sh", []byte("#!/usr/bin/env bash\n"+runtime))
}

// TestScriptsParse checks every script of every corpus layout.
func TestScriptsParse(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("shellcheck is not installed (Debian: shellcheck): only the mvdan.cc/sh parse runs")
	}
	for name, d := range loadCorpus(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := Generate(d, Options{PathDirs: "/nix/store/x-util-linux/bin:/nix/store/y-e2fsprogs/bin"})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			for file, script := range s.Files() {
				checkScript(t, name+"/"+file, script)
			}
		})
	}
}
