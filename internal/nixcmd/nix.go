// Package nixcmd runs the local Nix (nix build, eval, path-info, store
// dump-path) with the flags nixos-anywhere passes, and with an environment
// stripped of the installer's secrets (see ChildEnv).
package nixcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Nix runs the local Nix. The zero value finds `nix` on PATH with the
// process environment, minus what ChildEnv drops.
type Nix struct {
	BinDir string // directory holding nix and nix-store; "" searches PATH
	// Env is the environment Nix calls start from (nil: the process's);
	// every call gets only ChildEnv(Env).
	Env []string
	// Options are --option KEY VALUE pairs passed to every call.
	Options [][2]string
	// PrintBuildLogs (-L) and ShowTrace are nixos-anywhere's flags.
	PrintBuildLogs bool
	ShowTrace      bool
	// Stderr receives Nix's progress and build logs; nil discards them.
	Stderr io.Writer
}

// commonFlags are the flags nixos-anywhere passes to every `nix` command.
func (n *Nix) commonFlags() []string {
	args := []string{"--extra-experimental-features", "nix-command flakes"}
	for _, o := range n.Options {
		args = append(args, "--option", o[0], o[1])
	}
	if n.ShowTrace {
		args = append(args, "--show-trace")
	}
	return args
}

func (n *Nix) bin(name string) string {
	if n.BinDir == "" {
		return name
	}
	return filepath.Join(n.BinDir, name)
}

// command runs a Nix tool and returns its stdout; stderr goes to n.Stderr
// and its tail into the error.
func (n *Nix) command(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.bin(tool), args...)
	cmd.Env = ChildEnv(n.Env)
	var stdout bytes.Buffer
	tail := &Tail{Max: 4096}
	cmd.Stdout = &stdout
	if n.Stderr != nil {
		cmd.Stderr = io.MultiWriter(n.Stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w (install Nix, or put it on PATH)", tool, err)
		}
		if n.Stderr != nil {
			// Its messages were shown as they came.
			return nil, fmt.Errorf("%s %s: %w (see its messages above)", tool, args[0], err)
		}
		if msg := tail.String(); msg != "" {
			return nil, fmt.Errorf("%s %s: %w:\n%s", tool, args[0], err, msg)
		}
		return nil, fmt.Errorf("%s %s: %w", tool, args[0], err)
	}
	return stdout.Bytes(), nil
}

// DumpPath writes the NAR serialisation of path in store (a binary cache or
// another store, as --from gives it) to w, with `nix store dump-path`.
func (n *Nix) DumpPath(ctx context.Context, w io.Writer, store, path string) error {
	args := append([]string{"store", "dump-path"}, n.commonFlags()...)
	args = append(args, "--store", store, path)
	cmd := exec.CommandContext(ctx, n.bin("nix"), args...)
	cmd.Env = ChildEnv(n.Env)
	cmd.Stdout = w
	tail := &Tail{Max: 2048}
	cmd.Stderr = tail
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nix store dump-path --store %s %s: %w: %s", store, path, err, tail.String())
	}
	return nil
}

// Built is one result of `nix build --json`.
type Built struct {
	DrvPath string            `json:"drvPath"`
	Outputs map[string]string `json:"outputs"`
}

// Out is the "out" output (the only one the installer uses).
func (b Built) Out() string { return b.Outputs["out"] }

// Build builds installables (e.g. "./flake#nixosConfigurations.x.config.system.build.toplevel")
// without creating result links, and returns one result per installable in
// order. It uses `nix build --no-link --json`, which Nix 2.8 has
// (--print-out-paths came later).
func (n *Nix) Build(ctx context.Context, installables ...string) ([]Built, error) {
	args := append([]string{"build"}, n.commonFlags()...)
	args = append(args, "--no-write-lock-file", "--no-link", "--json")
	if n.PrintBuildLogs {
		args = append(args, "-L")
	}
	args = append(args, installables...)
	out, err := n.command(ctx, "nix", args...)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", strings.Join(installables, " "), err)
	}
	var res []Built
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("building %s: reading nix build --json output %q: %w", strings.Join(installables, " "), out, err)
	}
	if len(res) != len(installables) {
		return nil, fmt.Errorf("building %s: nix build returned %d results for %d installables", strings.Join(installables, " "), len(res), len(installables))
	}
	for i, r := range res {
		if r.Out() == "" {
			return nil, fmt.Errorf("building %s: no \"out\" output", installables[i])
		}
	}
	return res, nil
}

// EvalRaw evaluates an installable to a string (`nix eval --raw`).
func (n *Nix) EvalRaw(ctx context.Context, installable string) (string, error) {
	args := append([]string{"eval"}, n.commonFlags()...)
	args = append(args, "--no-write-lock-file", "--raw", installable)
	out, err := n.command(ctx, "nix", args...)
	if err != nil {
		return "", fmt.Errorf("evaluating %s: %w", installable, err)
	}
	return string(out), nil
}

// EvalJSON evaluates an installable and decodes its JSON into v.
func (n *Nix) EvalJSON(ctx context.Context, installable string, v any) error {
	args := append([]string{"eval"}, n.commonFlags()...)
	args = append(args, "--no-write-lock-file", "--json", installable)
	out, err := n.command(ctx, "nix", args...)
	if err != nil {
		return fmt.Errorf("evaluating %s: %w", installable, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("evaluating %s: %w", installable, err)
	}
	return nil
}

// PathInfo is one store path of a closure, as `nix path-info --json` prints it.
type PathInfo struct {
	Path             string   `json:"path"`
	NarHash          string   `json:"narHash"`
	NarSize          int64    `json:"narSize"`
	References       []string `json:"references"`
	Deriver          string   `json:"deriver"`
	RegistrationTime int64    `json:"registrationTime"`
	Ultimate         bool     `json:"ultimate"`
	Signatures       []string `json:"signatures"`
	CA               string   `json:"ca"`
	Valid            *bool    `json:"valid"` // false for paths path-info could not find
}

// Closure lists the closure of paths in store ("" for the local store) in
// dependency order: every path comes after the paths it references.
func (n *Nix) Closure(ctx context.Context, store string, paths ...string) ([]PathInfo, error) {
	return n.closure(ctx, store, false, paths)
}

// DerivationClosure lists the closure of derivation files (the .drv files
// and sources a build needs, not the outputs), for building on the target.
func (n *Nix) DerivationClosure(ctx context.Context, drvs ...string) ([]PathInfo, error) {
	return n.closure(ctx, "", true, drvs)
}

func (n *Nix) closure(ctx context.Context, store string, derivation bool, paths []string) ([]PathInfo, error) {
	args := append([]string{"path-info"}, n.commonFlags()...)
	if derivation {
		args = append(args, "--derivation")
	}
	if store != "" {
		args = append(args, "--store", store)
	}
	args = append(args, "--json", "--recursive")
	args = append(args, paths...)
	out, err := n.command(ctx, "nix", args...)
	if err != nil {
		return nil, fmt.Errorf("listing the closure of %s: %w", strings.Join(paths, " "), err)
	}
	var infos []PathInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		return nil, fmt.Errorf("listing the closure of %s: %w", strings.Join(paths, " "), err)
	}
	for _, in := range infos {
		if in.Valid != nil && !*in.Valid {
			return nil, fmt.Errorf("listing the closure of %s: %s is not in the store %s", strings.Join(paths, " "), in.Path, or(store, "(local)"))
		}
		if in.NarSize <= 0 || in.NarHash == "" {
			return nil, fmt.Errorf("listing the closure of %s: %s has no NAR size or hash", strings.Join(paths, " "), in.Path)
		}
	}
	return TopoSort(infos)
}

// Size sums the NAR sizes of a closure.
func Size(infos []PathInfo) int64 {
	var n int64
	for _, in := range infos {
		n += in.NarSize
	}
	return n
}

// TopoSort orders infos so that every path follows the paths it references
// (self-references ignored), as the target's store requires. Ties keep the
// order of the store path names, so the result is deterministic.
func TopoSort(infos []PathInfo) ([]PathInfo, error) {
	byPath := make(map[string]PathInfo, len(infos))
	for _, in := range infos {
		byPath[in.Path] = in
	}
	names := make([]string, 0, len(byPath))
	for p := range byPath {
		names = append(names, p)
	}
	slices.Sort(names)
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[string]int, len(names))
	out := make([]PathInfo, 0, len(names))
	var visit func(p string, chain []string) error
	visit = func(p string, chain []string) error {
		switch state[p] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("reference cycle between store paths: %s", strings.Join(append(chain, p), " -> "))
		}
		state[p] = visiting
		refs := slices.Clone(byPath[p].References)
		slices.Sort(refs)
		for _, r := range refs {
			if r == p {
				continue
			}
			if _, ok := byPath[r]; !ok {
				return fmt.Errorf("%s references %s, which is not in the closure", p, r)
			}
			if err := visit(r, append(chain, p)); err != nil {
				return err
			}
		}
		state[p] = done
		out = append(out, byPath[p])
		return nil
	}
	for _, p := range names {
		if err := visit(p, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Tail keeps the last Max bytes written to it: a command's stderr, kept for
// its error message while the whole stream goes elsewhere.
type Tail struct {
	Max int
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.Max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

// String is the kept text without surrounding blank space.
func (t *Tail) String() string { return strings.TrimSpace(string(t.buf)) }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
