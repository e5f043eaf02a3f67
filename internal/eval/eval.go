// Package eval turns a layout source (a .nix file, a flake output or JSON) into the JSON
// of its disko.devices tree. It is the only code in the project that runs Nix to
// evaluate a layout, so Nix's quirks (partial JSON on failure, flakes that do not see
// untracked files, a missing nixpkgs) are dealt with here once; internal/config only
// ever sees JSON.
//
// What is supported, and how:
//
//   - A .nix file (any path not ending in .json) holding an attribute set or a function.
//     A function is called the way disko calls it: `lib` is nixpkgs' lib (from
//     Source.Nixpkgs, else <nixpkgs/lib> on NIX_PATH), arguments with defaults
//     (`disks ? [ ... ]`) keep them unless --arg/--argstr give a value. `config`,
//     `options`, `pkgs` and `modulesPath` are stand-ins that are fine while unused and
//     fail with ErrModule when the layout reads them. A file with `imports` is a NixOS
//     module and is refused (ErrModule): evaluate it through a flake's
//     nixosConfigurations or the NixOS module.
//   - A flake output REF#NAME: diskoConfigurations.NAME (same rules as a file), else
//     nixosConfigurations.NAME.config.disko.devices, without the module system's internal
//     attributes (names starting with "_"). Local path refs (./dir, /dir, path:./dir) are
//     resolved like the nix CLI does, so in a git work tree only files known to git exist.
//   - JSON: a .json file, or "-" for stdin.
//
// Accepted shapes: { disko.devices = { ... }; } (other top-level attributes are
// ignored), or a bare devices set whose keys are all among DeviceKeys. The unwrapping
// happens inside Nix, so only the devices subtree is converted to JSON.
//
// Everything runs in one nix-instantiate process (about 20 ms). Flakes go through
// builtins.getFlake rather than `nix eval`, because `nix eval` can neither pass
// --arg/--argstr to an --expr nor pick "A, else B" between two flake attributes in one
// evaluation on Nix 2.8.
package eval

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
)

// Source says where a layout comes from (exactly one of Path or Flake).
type Source struct {
	Path      string // a .nix file, a .json file, or "-" for JSON on stdin
	Flake     string // "REF#NAME", e.g. "./examples#demo" or "path:/x#demo"
	Args      []Arg  // --arg NAME EXPR / --argstr NAME VALUE, in order
	Nixpkgs   string // --nixpkgs PATH: a nixpkgs checkout (or nixpkgs.lib) whose lib/ gives `lib`
	ShowTrace bool
}

// Arg is one --arg NAME EXPR (a Nix expression) or, with String, --argstr NAME VALUE.
type Arg struct {
	Name, Value string
	String      bool
}

// Evaluator runs Nix; zero value uses `nix-instantiate` from PATH, os.Stdin and the
// process's environment. Nix only ever sees nixcmd.ChildEnv of that environment, so
// secrets such as SSHPASS or SSH_PRIVATE_KEY never reach an impure evaluation
// (builtins.getEnv) whoever the caller is.
type Evaluator struct {
	NixBinDir string    // directory holding nix-instantiate; empty: search PATH
	Stdin     io.Reader // read when Source.Path is "-"
	Env       []string  // environment for Nix (and its PATH for the lookup); nil: os.Environ()
}

// DeviceKeys are the keys of disko.devices: a set with only these keys is taken as a
// bare devices set rather than { disko.devices = ...; }.
var DeviceKeys = []string{"disk", "mdadm", "zpool", "lvm_vg", "nodev", "bcachefs_filesystems"}

// Kinds of failure a caller may want to tell apart with errors.Is. Every error from
// Devices also reads as a complete message for the user.
var (
	ErrNixNotFound = errors.New("nix-instantiate not found")
	ErrNeedsLib    = errors.New("layout needs nixpkgs' lib")
	ErrModule      = errors.New("layout is a NixOS module")
	ErrShape       = errors.New("not a disko layout")
	ErrNoConfig    = errors.New("flake has no such configuration")
	ErrBadJSON     = errors.New("invalid JSON")
	ErrNixFailed   = errors.New("nix evaluation failed")
)

// evalError is a message for the user that errors.Is matches against its kind and cause.
type evalError struct {
	kind  error
	msg   string
	cause error
}

func (e *evalError) Error() string { return e.msg }

func (e *evalError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

//go:embed eval.nix
var evalNix string

const nixInstantiate = "nix-instantiate"

// Devices evaluates src and returns the JSON object of its disko.devices tree.
func (e *Evaluator) Devices(ctx context.Context, src Source) (json.RawMessage, error) {
	switch {
	case src.Path != "" && src.Flake != "":
		return nil, errors.New("give either a layout file or --flake REF#NAME, not both")
	case src.Flake != "":
		return e.flake(ctx, src)
	case src.Path == "":
		return nil, errors.New("no layout given: pass a .nix or .json file, - for JSON on stdin, or --flake REF#NAME")
	case src.Path == "-" || strings.HasSuffix(src.Path, ".json"):
		return e.jsonFile(src)
	default:
		return e.nixFile(ctx, src)
	}
}

// request is the __diskoEval argument of eval.nix.
type request struct {
	File       string   `json:"file,omitempty"`
	Flake      string   `json:"flake,omitempty"`
	Name       string   `json:"name,omitempty"`
	Lib        string   `json:"lib"`
	DeviceKeys []string `json:"deviceKeys"`
}

func (e *Evaluator) nixFile(ctx context.Context, src Source) (json.RawMessage, error) {
	abs, err := filepath.Abs(src.Path)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	lib, err := libDir(src.Nixpkgs)
	if err != nil {
		return nil, err
	}
	req := request{File: abs, Lib: lib, DeviceKeys: DeviceKeys}
	return e.run(ctx, src, src.Path, req, "")
}

func (e *Evaluator) flake(ctx context.Context, src Source) (json.RawMessage, error) {
	ref, name, ok := cutLast(src.Flake, "#")
	if !ok || ref == "" || name == "" {
		return nil, fmt.Errorf("--flake %s: expected REF#NAME, e.g. ./examples#demo", src.Flake)
	}
	nixRef, gitRoot, err := resolveFlakeRef(ref)
	if err != nil {
		return nil, fmt.Errorf("--flake %s: %w", src.Flake, err)
	}
	lib, err := libDir(src.Nixpkgs)
	if err != nil {
		return nil, err
	}
	req := request{Flake: nixRef, Name: name, Lib: lib, DeviceKeys: DeviceKeys}
	return e.run(ctx, src, src.Flake, req, gitRoot)
}

// cutLast splits s around the last sep (a flake ref may not contain '#', NAME is after it).
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// resolveFlakeRef makes a local path ref absolute, because builtins.getFlake takes only
// absolute refs, and picks git+file for a directory inside a git work tree exactly as
// the nix CLI does (so untracked files stay invisible, as with nixos-rebuild). It
// returns that work tree's root, for hints. Other refs (github:, git+https:, ...) pass
// through unchanged.
func resolveFlakeRef(ref string) (nixRef, gitRoot string, err error) {
	if rel, ok := strings.CutPrefix(ref, "path:"); ok && !filepath.IsAbs(rel) && !strings.Contains(rel, "?") {
		abs, err := filepath.Abs(rel)
		return "path:" + abs, "", err
	}
	if !strings.HasPrefix(ref, ".") && !strings.HasPrefix(ref, "/") {
		return ref, "", nil
	}
	dir, err := filepath.Abs(ref)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "flake.nix")); err != nil {
		return "", "", fmt.Errorf("%s is not a flake: %w", dir, err)
	}
	for root := dir; ; root = filepath.Dir(root) {
		if _, err := os.Lstat(filepath.Join(root, ".git")); err == nil {
			q := url.Values{}
			if sub, _ := filepath.Rel(root, dir); sub != "." {
				q.Set("dir", filepath.ToSlash(sub))
			}
			if _, err := os.Stat(filepath.Join(root, ".git", "shallow")); err == nil {
				q.Set("shallow", "1")
			}
			nixRef = "git+file://" + root
			if len(q) > 0 {
				nixRef += "?" + q.Encode()
			}
			return nixRef, root, nil
		}
		if root == filepath.Dir(root) {
			return "path:" + dir, "", nil
		}
	}
}

// libDir finds the directory whose default.nix is nixpkgs' lib: PATH/lib for a nixpkgs
// or nixpkgs.lib checkout, PATH itself when it already is a lib directory.
func libDir(nixpkgs string) (string, error) {
	if nixpkgs == "" {
		return "", nil
	}
	abs, err := filepath.Abs(nixpkgs)
	if err != nil {
		return "", fmt.Errorf("--nixpkgs %s: %w", nixpkgs, err)
	}
	for _, dir := range []string{filepath.Join(abs, "lib"), abs} {
		if _, err := os.Stat(filepath.Join(dir, "default.nix")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("--nixpkgs %s: neither %s/lib/default.nix (a nixpkgs or nixpkgs.lib checkout) nor %s/default.nix (a lib directory) exists",
		nixpkgs, abs, abs)
}

// run evaluates eval.nix for req in one nix-instantiate process. name labels messages.
//
// A layout file is first evaluated with Nix's dummy store, which spares Nix opening its
// database: about 1 ms of CPU and 10 ms of wall time, 5% of a compile. --eval copies
// nothing to the store either way (a path such as passwordFile = ./key becomes the same
// store path string with both), but what needs a store that holds something (building,
// fetching, reading a store path's validity) fails with the dummy one: so a failed
// evaluation runs again with the real store, whose result or error is the answer.
// Flakes always need the store.
func (e *Evaluator) run(ctx context.Context, src Source, name string, req request, gitRoot string) (json.RawMessage, error) {
	env := e.env()
	bin, err := e.lookNix(env, name)
	if err != nil {
		return nil, err
	}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	args := []string{"--eval", "--strict", "--json"}
	if req.Flake != "" {
		args = append(args, "--extra-experimental-features", "nix-command flakes")
	}
	if src.ShowTrace {
		args = append(args, "--show-trace")
	}
	args = append(args, "-E", evalNix, "--argstr", "__diskoEval", string(reqJSON))
	for _, a := range src.Args {
		flag := "--arg"
		if a.String {
			flag = "--argstr"
		}
		args = append(args, flag, a.Name, a.Value)
	}
	start := time.Now()
	stopped := func() error {
		return &evalError{cause: ctx.Err(),
			msg: fmt.Sprintf("%s: evaluation stopped after %s: %v", name, time.Since(start).Round(time.Millisecond), ctx.Err())}
	}
	if req.Flake == "" {
		out, _, err := runNix(ctx, bin, env, append([]string{"--store", "dummy://"}, args...))
		if err == nil {
			return checkedJSON(name, out)
		}
		if ctx.Err() != nil {
			return nil, stopped()
		}
	}
	out, stderr, err := runNix(ctx, bin, env, args)
	if ctx.Err() != nil {
		return nil, stopped()
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err := nixError(name, req, cleanStderr(stderr), src.ShowTrace, gitRoot)
		// eval.nix has no code on its line 1, so «string»:1: is an --arg expression.
		if strings.Contains(stderr, "at «string»:1:") && slices.ContainsFunc(src.Args, func(a Arg) bool { return !a.String }) {
			err.msg += "\nhint: --arg NAME VALUE takes a Nix expression; use --argstr NAME VALUE for a plain string"
		}
		return nil, err
	}
	if err != nil {
		return nil, &evalError{kind: ErrNixFailed, cause: err, msg: fmt.Sprintf("%s: running %s: %v", name, bin, err)}
	}
	return checkedJSON(name, out)
}

// runNix runs nix-instantiate with args and returns its stdout and stderr.
//
// It reads both pipes to their end before it waits for the process. Parked on the
// pipes, the Go runtime is idle for the whole evaluation; blocked in the wait system
// call instead, its monitor thread woke every 20 µs, then less often, until Nix was
// done: about 0.27 ms of a compile's own 5.9 ms of CPU over disko's examples.
func runNix(ctx context.Context, bin string, env, args []string) (stdout []byte, stderr string, err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.WaitDelay = time.Second // a killed Nix may leave a helper holding the pipes
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	var out, errOut []byte
	outDone, errDone := make(chan struct{}), make(chan struct{})
	go func() { out, _ = io.ReadAll(outPipe); close(outDone) }()
	go func() { errOut, _ = io.ReadAll(errPipe); close(errDone) }()
	for _, done := range []chan struct{}{outDone, errDone} {
		select {
		case <-done:
		case <-ctx.Done():
			// Nix is being killed; a helper it left may hold the pipes, which Wait
			// closes once Nix has exited.
		}
	}
	err = cmd.Wait()
	<-outDone
	<-errDone
	return out, string(errOut), err
}

// checkedJSON returns what Nix printed once it is known to be whole: on failure Nix
// prints partial JSON.
func checkedJSON(name string, stdout []byte) (json.RawMessage, error) {
	out := bytes.TrimSpace(stdout)
	if !json.Valid(out) || len(out) == 0 || out[0] != '{' {
		return nil, &evalError{kind: ErrNixFailed,
			msg: fmt.Sprintf("%s: nix-instantiate printed no JSON object: %.200q", name, out)}
	}
	return out, nil
}

func (e *Evaluator) env() []string {
	env := nixcmd.ChildEnv(e.Env)
	// No substituters: evaluation needs no binary cache, and an unreachable one makes
	// every store access wait. A later line of NIX_CONFIG wins, so the user's stay.
	conf := "substituters ="
	var out []string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "NIX_CONFIG="); ok {
			conf = v + "\n" + conf
			continue
		}
		out = append(out, kv)
	}
	return append(out, "NIX_CONFIG="+conf)
}

// lookNix finds nix-instantiate in NixBinDir, or else on the PATH Nix will run with.
func (e *Evaluator) lookNix(env []string, name string) (string, error) {
	dirs, where := []string{e.NixBinDir}, e.NixBinDir
	if e.NixBinDir == "" {
		path := ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		dirs, where = filepath.SplitList(path), "on PATH"
	} else {
		where = "in " + where
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, nixInstantiate)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &evalError{kind: ErrNixNotFound, msg: fmt.Sprintf(
		"Nix is needed to evaluate %s but %s was not found %s; install it (Debian: apt-get install nix-bin) or pass a .json layout",
		name, nixInstantiate, where)}
}

// noise is what Nix prints to stderr that says nothing about the layout.
var noise = []*lazyregexp.Regexp{
	lazyregexp.New(`^warning: the group '.*' specified in 'build-users-group' does not exist$`),
	lazyregexp.New(`^warning: Git tree '.*' is dirty$`),
	lazyregexp.New(`^warning: error: .*; retrying in \d+ ms$`), // the final error follows
}

func cleanStderr(s string) string {
	var keep []string
	for line := range strings.SplitSeq(s, "\n") {
		if !slices.ContainsFunc(noise, func(re *lazyregexp.Regexp) bool { return re.MatchString(line) }) {
			keep = append(keep, line)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

var marker = lazyregexp.New(`diskoeval:([a-z-]+):(.*)`)

// nixError turns a failed evaluation into a message: eval.nix's own diagnoses by kind,
// anything else as Nix's message under a line naming the layout.
func nixError(name string, req request, stderr string, showTrace bool, gitRoot string) *evalError {
	m := marker.FindStringSubmatch(stderr)
	if m == nil {
		msg := fmt.Sprintf("%s: nix-instantiate failed:\n%s", name, stderr)
		if gitRoot != "" && strings.Contains(stderr, "No such file or directory") {
			msg += "\n" + gitHint(gitRoot)
		}
		return &evalError{kind: ErrNixFailed, msg: msg}
	}
	var payload struct {
		Type  string   `json:"type"`
		Key   string   `json:"key"`
		Keys  []string `json:"keys"`
		Disko []string `json:"disko"`
		NixOS []string `json:"nixos"`
	}
	var arg string
	if json.Unmarshal([]byte(m[2]), &payload) != nil {
		_ = json.Unmarshal([]byte(m[2]), &arg)
	}
	var err *evalError
	switch m[1] {
	case "needs-lib":
		err = &evalError{kind: ErrNeedsLib, msg: name + ": this layout is a function of `lib` (nixpkgs' library), but no nixpkgs was found: " +
			"pass --nixpkgs PATH or put nixpkgs on NIX_PATH (NIX_PATH=nixpkgs=/path/to/nixpkgs)"}
	case "module":
		err = &evalError{kind: ErrModule, msg: name + ": this is a NixOS module (it has `imports`), not a layout file; " +
			"module files are supported through --flake REF#NAME (nixosConfigurations.NAME) or the NixOS module"}
	case "module-arg":
		err = &evalError{kind: ErrModule, msg: fmt.Sprintf("%s: this layout uses `%s`, which exists only when it is imported as a NixOS module; "+
			"evaluate it through --flake REF#NAME (nixosConfigurations.NAME) or the NixOS module, or write the layout without `%s`", name, arg, arg)}
	case "shape":
		err = shapeError(name, payload.Keys, payload.Type, payload.Key)
	case "no-disko-option":
		err = &evalError{kind: ErrNoConfig, msg: fmt.Sprintf("%s: nixosConfigurations.%s has no disko.devices option; does it import the disko NixOS module?", name, req.Name)}
	case "no-config":
		err = &evalError{kind: ErrNoConfig, msg: fmt.Sprintf("%s: the flake has neither diskoConfigurations.%s nor nixosConfigurations.%s (diskoConfigurations: %s; nixosConfigurations: %s)",
			name, req.Name, req.Name, list(payload.Disko), list(payload.NixOS))}
		if gitRoot != "" {
			err.msg += "\n" + gitHint(gitRoot)
		}
	default:
		err = &evalError{kind: ErrNixFailed, msg: fmt.Sprintf("%s: nix-instantiate failed:\n%s", name, stderr)}
	}
	if showTrace {
		err.msg += "\n" + stderr
	}
	return err
}

func gitHint(root string) string {
	return fmt.Sprintf("hint: the flake is in the git work tree %s, where flakes see only files known to git; `git add` new files (no commit needed)", root)
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// shapeError says what a layout should look like and what was found instead: the
// top-level keys, or the type of a value that is not an attribute set.
func shapeError(name string, keys []string, typ, key string) *evalError {
	found := "found top-level keys: " + list(keys)
	switch {
	case key != "":
		found = fmt.Sprintf("found %s of type %s", key, typ)
	case typ != "":
		found = "found a " + typ
	}
	return &evalError{kind: ErrShape, msg: fmt.Sprintf(
		"%s: not a disko layout: expected { disko.devices = { ... }; } or a devices set with keys among %s; %s",
		name, strings.Join(DeviceKeys, ", "), found)}
}

// jsonFile reads a JSON layout (stdin for "-") and unwraps it by the same rules as eval.nix.
func (e *Evaluator) jsonFile(src Source) (json.RawMessage, error) {
	name := src.Path
	if len(src.Args) > 0 {
		return nil, fmt.Errorf("%s: --arg/--argstr apply only to Nix layouts, not to JSON", name)
	}
	var data []byte
	var err error
	if name == "-" {
		name = "<stdin>"
		in := e.Stdin
		if in == nil {
			in = os.Stdin
		}
		data, err = io.ReadAll(in)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return unwrapJSON(name, data)
}

func unwrapJSON(name string, data []byte) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			offset := syntax.Offset
			if syntax.Error() == "unexpected end of JSON input" {
				offset++ // point past the end, where something is missing
			}
			line, col := position(data, offset)
			return nil, &evalError{kind: ErrBadJSON, cause: err, msg: fmt.Sprintf("%s:%d:%d: not valid JSON: %v", name, line, col, err)}
		case errors.As(err, &typ):
			return nil, shapeError(name, nil, typ.Value, "")
		}
		return nil, &evalError{kind: ErrBadJSON, cause: err, msg: fmt.Sprintf("%s: not valid JSON: %v", name, err)}
	}
	if top == nil {
		return nil, shapeError(name, nil, "null", "")
	}
	if raw, ok := top["disko"]; ok {
		var disko map[string]json.RawMessage
		if json.Unmarshal(raw, &disko) != nil || disko == nil {
			return nil, shapeError(name, nil, jsonType(raw), "disko")
		}
		devices, ok := disko["devices"]
		if !ok {
			keys := slices.Sorted(maps.Keys(disko))
			for i := range keys {
				keys[i] = "disko." + keys[i]
			}
			return nil, shapeError(name, keys, "", "")
		}
		if typ := jsonType(devices); typ != "object" {
			return nil, shapeError(name, nil, typ, "disko.devices")
		}
		return devices, nil
	}
	keys := slices.Sorted(maps.Keys(top))
	if len(keys) == 0 || slices.ContainsFunc(keys, func(k string) bool { return !slices.Contains(DeviceKeys, k) }) {
		return nil, shapeError(name, keys, "", "")
	}
	return bytes.TrimSpace(data), nil
}

// jsonType names the JSON type of a valid value by its first byte.
func jsonType(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// position turns the offset of a json.SyntaxError (bytes read, the bad one included)
// into the 1-based line and column of the bad byte, or of the end of the input.
func position(data []byte, offset int64) (line, col int) {
	before := data[:max(0, min(int(offset)-1, len(data)))]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}
