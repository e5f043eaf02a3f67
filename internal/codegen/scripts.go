// Package codegen turns a validated layout (config.Devices) into the shell scripts that
// format, mount, unmount and destroy its disks, doing per node what disko's generated
// scripts do (the _create, _mount and _unmount of each type in disko's lib/types/*.nix:
// the same tools, device paths and partition labels, so that disko's layouts keep their
// meaning), but safe by construction: every layout value passes through Q, a script
// refuses to overwrite data it did not create, and devices are waited for by name rather
// than by sleeping.
//
// Layout of the package: graph.go orders the top-level devices and the mounts;
// runtime.sh is the shell library (device settling, guards, GPT placement, teardown) of
// which each script embeds the functions it reaches (reach.go, runtime_index.go); one
// file per node family writes that family's commands
// (gpt.go, filesystem.go, luks.go, lvm.go, md.go, zfs.go, btrfs.go, bcachefs.go,
// nodev.go); destroy.go writes the destroy step; this file assembles the scripts.
package codegen

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"mvdan.cc/sh/v3/syntax"
)

//go:embed runtime.sh
var runtime string

// Options change how scripts are generated.
type Options struct {
	// RootMountpoint is where the installed system's root is mounted; default "/mnt".
	RootMountpoint string
	// PathDirs are colon-separated directories put in front of PATH (the Nix package's
	// store paths); empty leaves PATH alone, so tools are found by their plain names.
	PathDirs string
}

// Scripts are the generated scripts, one per disko mode.
type Scripts struct {
	Destroy, Format, Mount, Unmount, FormatMount, DestroyFormatMount []byte
	// Tools are the programs the scripts may run (by name, found on PATH).
	Tools []string
}

// Modes lists disko's mode names in the order Files and the docs show them.
var Modes = []string{"destroy", "format", "mount", "unmount", "format,mount", "destroy,format,mount"}

// ByMode returns the script for a mode as disko names it.
func (s *Scripts) ByMode(mode string) ([]byte, error) {
	switch mode {
	case "destroy":
		return s.Destroy, nil
	case "format":
		return s.Format, nil
	case "mount":
		return s.Mount, nil
	case "unmount":
		return s.Unmount, nil
	case "format,mount":
		return s.FormatMount, nil
	case "destroy,format,mount":
		return s.DestroyFormatMount, nil
	}
	return nil, fmt.Errorf("unknown mode %q (modes: %s)", mode, strings.Join(Modes, ", "))
}

// Files returns the scripts by file name.
func (s *Scripts) Files() map[string][]byte {
	return map[string][]byte{
		"destroy.sh":              s.Destroy,
		"format.sh":               s.Format,
		"mount.sh":                s.Mount,
		"unmount.sh":              s.Unmount,
		"format-mount.sh":         s.FormatMount,
		"destroy-format-mount.sh": s.DestroyFormatMount,
	}
}

// Generate writes the scripts of a layout that config.Load returned (every default
// filled in). Errors name the option path.
func Generate(d *config.Devices, opts Options) (*Scripts, error) {
	if d == nil || len(d.Disk) == 0 {
		return nil, errors.New(config.RootPath + ".disk: no disks are defined")
	}
	if err := checkNUL(reflect.ValueOf(d), newOptPath(config.RootPath)); err != nil {
		return nil, err
	}
	root := opts.RootMountpoint
	if root == "" {
		root = "/mnt"
	}
	if !strings.HasPrefix(root, "/") {
		return nil, fmt.Errorf("root mount point %q is not an absolute path", root)
	}
	g := &gen{d: d, opts: opts, root: strings.TrimRight(root, "/")}
	g.collectUnits()
	if err := g.index(); err != nil {
		return nil, err
	}
	if err := g.order(); err != nil {
		return nil, err
	}
	format, err := g.formatPhase()
	if err != nil {
		return nil, err
	}
	acts := g.mountActions()
	mount := function("disko_mount", text(func(w *writer) {
		w.raw("disko_udev_known")
		sequence(w, acts, false)
	}))
	unmount := function("disko_unmount", text(func(w *writer) {
		w.raw("disko_udev_known")
		sequence(w, acts, true)
	}))
	destroy := g.destroyPhase(acts)
	preflight, err := g.preflight()
	if err != nil {
		return nil, err
	}
	head := g.header()
	prog, err := layoutProgram(head + destroy + format + mount + unmount + preflight)
	if err != nil {
		return nil, err
	}
	var tools []string
	script := func(what string, funcs []string, calls ...string) []byte {
		wipes := slices.Contains(calls, `disko_destroy "$@"`)
		formats := slices.Contains(calls, "disko_format")
		var top []string
		if !wipes {
			top = append(top, `[ "$#" -eq 0 ] || disko_die "this script takes no arguments"`)
		}
		// The preconditions, all checked before anything changes (see preflight.go).
		if len(g.asks) > 0 && (formats || slices.Contains(calls, "disko_mount")) {
			top = append(top, string(g.needTerminal(wipes)))
		}
		if formats && preflight != "" {
			if wipes {
				top = append(top, "disko_preflight wipe")
			} else {
				top = append(top, "disko_preflight keep")
			}
		}
		top = append(top, "disko_checked")
		top = append(top, calls...)
		reached, all, needed := prog.reachLines(top...)
		tools = append(tools, all...)
		if need := needTools(needed); need != "" {
			at := 0
			if !wipes {
				at = 1 // after the check of the arguments
			}
			top = slices.Insert(top, at, string(need))
			more, _, _ := prog.reachLines(string(need))
			for i, r := range more {
				reached[i] = reached[i] || r
			}
		}
		// The script's own size: a compile runs once, in a fresh process, where every
		// byte allocated is a page touched for the first time.
		header := "#!/usr/bin/env bash\n# " + what + "\n# Generated by diskoanywhere from a disko layout; regenerate it rather than edit it.\n"
		size := len(header) + len(head) + 1 + len(runtimeEnd)
		for _, f := range funcs {
			size += 1 + len(f)
		}
		start := 0
		for i, c := range runtimeChunks() {
			if reached[i] {
				size += c.end - start
			}
			start = c.end
		}
		for _, line := range top {
			size += len(line) + 1
		}
		var b bytes.Buffer
		b.Grow(size)
		b.WriteString(header)
		b.WriteString(head)
		for _, f := range funcs {
			b.WriteString("\n")
			b.WriteString(f)
		}
		b.WriteString("\n")
		// The runtime functions the script reaches, after the layout's own steps.
		start = 0
		for i, c := range runtimeChunks() {
			if reached[i] {
				b.WriteString(runtime[start:c.end])
			}
			start = c.end
		}
		b.WriteString(runtimeEnd)
		for _, line := range top {
			b.WriteString(line + "\n")
		}
		return b.Bytes()
	}
	if preflight != "" {
		format = preflight + "\n" + format
	}
	s := &Scripts{}
	for _, sc := range []struct {
		out   *[]byte
		what  string
		funcs []string
		calls []string
	}{
		{&s.Destroy, "destroy: wipe every disk of the layout (asks first)", []string{destroy}, []string{`disko_destroy "$@"`}},
		{&s.Format, "format: create what the layout describes and the disks do not hold yet", []string{format}, []string{"disko_format"}},
		{&s.Mount, "mount: open, activate and mount everything below the root mount point", []string{mount}, []string{"disko_mount"}},
		{&s.Unmount, "unmount: the exact reverse of mount", []string{unmount}, []string{"disko_unmount"}},
		{&s.FormatMount, "format,mount: format, then mount", []string{format, mount}, []string{"disko_format", "disko_mount"}},
		{&s.DestroyFormatMount, "destroy,format,mount: wipe the disks (asks first), format, mount", []string{destroy, format, mount}, []string{`disko_destroy "$@"`, "disko_format", "disko_mount"}},
	} {
		*sc.out = script(sc.what, sc.funcs, sc.calls...)
	}
	slices.Sort(tools)
	s.Tools = slices.Compact(tools)
	return s, nil
}

// needTerminal is the check, before anything changes, that the passphrases the layout
// asks for can be typed: a script that stops for want of a terminal halfway through, after
// wiping, would leave the disks neither old nor new.
func (g *gen) needTerminal(wipes bool) sh {
	words := []sh{"disko_need_terminal", "0"}
	if wipes {
		words[1] = "1"
	}
	for _, name := range g.asks {
		words = append(words, Q(name))
	}
	return joinSh(words)
}

// function wraps body (unindented shell text) as a function, whose device variables
// (dev1, dev2, ...: disko_dev sets them by name) are declared local.
func function(name, body string) string {
	var w writer
	w.block(sh(name+"() {"), "}", func() {
		var nums []int
		for word := range shellWords(body) {
			if digits, ok := strings.CutPrefix(word, "dev"); ok {
				if n, err := strconv.Atoi(digits); err == nil {
					nums = append(nums, n)
				}
			}
		}
		slices.Sort(nums)
		var vars []string
		for _, n := range slices.Compact(nums) {
			vars = append(vars, "dev"+strconv.Itoa(n))
		}
		if len(vars) > 0 {
			w.raw("local " + strings.Join(vars, " "))
		}
		w.raw(strings.TrimSuffix(body, "\n"))
	})
	return w.String()
}

// header is the start every script shares: shell options and PATH.
func (g *gen) header() string {
	var w writer
	w.raw("set -euo pipefail")
	if g.opts.PathDirs != "" {
		w.linef("PATH=%s${PATH:+:$PATH}", Q(g.opts.PathDirs))
		w.raw("export PATH")
	}
	return w.String()
}

// runtimeEnd closes the part of a script that holds runtime.sh's functions.
const runtimeEnd = "# --- end of runtime ---\n"

// runtimeNames are the functions and variables runtime.sh defines.
var runtimeNames = sync.OnceValue(func() map[string]bool {
	names := map[string]bool{}
	for _, c := range runtimeChunks() {
		for _, n := range append(slices.Clip(c.funcs), c.vars...) {
			names[n] = true
		}
	}
	return names
})

// layoutProgram parses the layout's own code (every script's functions) and puts it
// after the runtime's chunks, for prog.reach.
func layoutProgram(code string) (*program, error) {
	f, err := parseScript([]byte(code))
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, st := range f.Stmts {
		if fd, ok := st.Cmd.(*syntax.FuncDecl); ok {
			names[fd.Name.Value] = true
		}
		for _, v := range assigned(st) {
			names[v] = true
		}
	}
	runtimeNames := runtimeNames()
	chunks, err := chunksOf([]byte(code), f, func(name string) bool { return names[name] || runtimeNames[name] })
	if err != nil {
		return nil, err
	}
	return newProgram(runtimeChunks(), chunks), nil
}

// formatPhase writes one function per unit that has anything to create, and
// disko_format, which runs them level by level (units of one level in parallel).
func (g *gen) formatPhase() (string, error) {
	var w writer
	var levels [][]string
	for i, u := range g.units {
		var body writer
		g.vars = 0
		if err := g.createUnit(&body, u); err != nil {
			return "", err
		}
		if !hasCommand(body.String()) {
			continue
		}
		name := fmt.Sprintf("disko_format_%d", i+1)
		w.comment(u.path)
		w.b.WriteString(function(name, body.String()))
		w.raw("")
		for len(levels) <= u.level {
			levels = append(levels, nil)
		}
		levels[u.level] = append(levels[u.level], name+" "+string(u.path.q()))
	}
	w.block("disko_format() {", "}", func() {
		w.raw("disko_udev_known")
		if g.interactive {
			w.raw("# one at a time: the layout asks for passphrases on the terminal")
		}
		for _, level := range levels {
			if g.interactive {
				for _, f := range level {
					name, _, _ := strings.Cut(f, " ")
					w.raw(name)
				}
				continue
			}
			w.raw("disko_parallel " + strings.Join(level, " "))
		}
		if settle := g.settle(); settle != "" {
			w.raw(string(settle))
		}
	})
	return w.String(), nil
}

// settle is the call that brings udev's records of every disk the format writes up to
// date before it ends (see disko_settle), so that the /dev/disk/by-* links the NixOS
// configuration names exist when format returns.
func (g *gen) settle() sh {
	words := []sh{"disko_settle"}
	for _, u := range g.units {
		if disk, ok := u.node.(*config.Disk); ok && disk.Content != nil {
			words = append(words, Q(disk.Device))
		}
	}
	if len(words) == 1 {
		return ""
	}
	return joinSh(words)
}

// hasCommand reports whether script text holds anything besides comments.
func hasCommand(script string) bool {
	for line := range strings.SplitSeq(script, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// createUnit writes what a unit's format function does.
func (g *gen) createUnit(w *writer, u *unit) error {
	w.comment(u.path)
	return withCreateHooksErr(w, u.path, u.node, func() error {
		switch n := u.node.(type) {
		case *config.Disk:
			if n.Content == nil {
				return nil
			}
			dev := g.resolve(w, &devRef{path: n.Device})
			if err := g.create(w, n.Content, dev); err != nil {
				return err
			}
			if hasTable(n.Content) {
				w.raw("disko_unpin")
			}
			return nil
		case *config.MDADM:
			if err := g.createMDADM(w, u, n); err != nil {
				return err
			}
			if n.Content != nil && hasTable(n.Content) {
				w.raw("disko_unpin")
			}
			return nil
		case *config.LVMVG:
			return g.createLVMVG(w, u, n)
		case *config.Zpool:
			return g.createZpool(w, u, n)
		case *config.BcachefsFilesystem:
			return g.createBcachefs(w, u, n)
		}
		return nil
	})
}

// hasTable reports whether a partition table is in node's tree (then the unit pins it
// while working, see disko_pin).
func hasTable(node config.Node) bool {
	switch n := node.(type) {
	case *config.GPT, *config.Table:
		return true
	case *config.LUKS:
		return n.Content != nil && hasTable(n.Content)
	}
	return false
}

// create writes the creation of a content node whose device node is in dev (a quoted
// variable).
func (g *gen) create(w *writer, node config.Node, dev sh) error {
	p := g.info[node].path
	w.comment(p)
	return withCreateHooksErr(w, p, node, func() error {
		switch n := node.(type) {
		case *config.GPT:
			return g.createGPT(w, p, n, dev)
		case *config.Table:
			return g.createTable(w, p, n, dev)
		case *config.Filesystem:
			return g.createFilesystem(w, p, n, dev)
		case *config.Swap:
			g.createSwap(w, p, n, dev)
		case *config.LUKS:
			return g.createLUKS(w, p, n, dev)
		case *config.LVMPV:
			g.createLVMPV(w, p, n, dev)
		case *config.BTRFS:
			g.createBTRFS(w, p, n, dev)
		case *config.MDRaid, *config.ZFS, *config.Bcachefs:
			// A member: its aggregate is created from all members once they exist.
		default:
			return errorf(p, "has type %q, which the script generator does not know", node.Kind())
		}
		return nil
	})
}

// withCreateHooksErr is withCreateHooks for a body that can fail.
func withCreateHooksErr(w *writer, p optPath, node any, body func() error) error {
	var err error
	withCreateHooks(w, p, node, func() { err = body() })
	return err
}

// mountActions collects every unit's mount steps, in mount order.
func (g *gen) mountActions() []*action {
	g.acts = nil
	for i, u := range g.units {
		g.unitPos = i
		owners := g.own(nil, u.path, u.node)
		switch n := u.node.(type) {
		case *config.Disk:
			if n.Content != nil {
				g.mounts(n.Content, owners)
			}
		case *config.MDADM:
			g.mountMDADM(u, n, owners)
		case *config.LVMVG:
			g.mountLVMVG(u, n, owners)
		case *config.Zpool:
			g.mountZpool(u, n, owners)
		case *config.BcachefsFilesystem:
			g.mountBcachefs(u, n, owners)
		case *config.Nodev:
			g.mountNodev(u, n, owners)
		}
	}
	return sortActions(g.acts)
}

// mounts collects the mount steps of a content node and its children.
func (g *gen) mounts(node config.Node, owners []*hooked) {
	info := g.info[node]
	p := info.path
	owners = g.own(owners, p, node)
	switch n := node.(type) {
	case *config.GPT:
		for _, key := range config.GPTOrder(n) {
			if c := n.Partitions[key].Content; c != nil {
				g.mounts(c, owners)
			}
		}
	case *config.Table:
		for _, part := range n.Partitions {
			if part.Content != nil {
				g.mounts(part.Content, owners)
			}
		}
	case *config.Filesystem:
		g.mountFilesystem(p, n, info.ref, owners)
	case *config.Swap:
		g.mountSwap(p, n, info.ref, owners)
	case *config.LUKS:
		g.mountLUKS(p, n, info.ref, owners)
		if n.Content != nil {
			g.mounts(n.Content, owners)
		}
	case *config.BTRFS:
		g.mountBTRFS(p, n, info.ref, owners)
	}
}

// own adds node to the owners when it has mount or unmount hooks.
func (g *gen) own(owners []*hooked, p optPath, node any) []*hooked {
	h := hooksOf(node)
	if h == nil || h.PreMountHook == "" && h.PostMountHook == "" && h.PreUnmountHook == "" && h.PostUnmountHook == "" {
		return owners
	}
	return append(slices.Clip(owners), &hooked{path: p, node: node, hooks: h})
}

func (g *gen) addAction(a *action) {
	a.unitPos = g.unitPos
	a.seq = len(g.acts)
	g.acts = append(g.acts, a)
}

func errorf(p optPath, format string, args ...any) error {
	return fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...))
}

// checkNUL rejects NUL bytes in any string of the layout: no shell word can hold one.
func checkNUL(v reflect.Value, p optPath) error {
	return findNUL(v, &nulStep{path: p})
}

// nulStep is one step of the option path down to the value findNUL looks at, joined into
// a path only when a NUL is found (a path per value would make a deep layout quadratic).
type nulStep struct {
	up    *nulStep
	path  optPath // the root's path
	field string  // a field's option name, or a map key
	attr  bool    // field is a map key (quoted as Nix needs it)
	index int     // a list position, when field is "" and up is set
}

func (s *nulStep) optPath() optPath {
	if s.up == nil {
		return s.path
	}
	p := s.up.optPath()
	switch {
	case s.attr:
		return p.attr(s.field)
	case s.field != "":
		return p.field(s.field)
	}
	return p.index(s.index)
}

func findNUL(v reflect.Value, at *nulStep) error {
	switch v.Kind() {
	case reflect.String:
		if strings.ContainsRune(v.String(), 0) {
			return errorf(at.optPath(), "contains a NUL byte, which no command line can carry")
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return findNUL(v.Elem(), at)
		}
	case reflect.Slice:
		for i := range v.Len() {
			if err := findNUL(v.Index(i), &nulStep{up: at, index: i}); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			kp := &nulStep{up: at, field: fmt.Sprint(k.Interface()), attr: true}
			if err := findNUL(k, kp); err != nil {
				return err
			}
			if err := findNUL(v.MapIndex(k), kp); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fp := at
			if name != "" && name != "-" {
				fp = &nulStep{up: at, field: name}
			}
			if err := findNUL(v.Field(i), fp); err != nil {
				return err
			}
		}
	}
	return nil
}
