package docs

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

// A few of disko's own example layouts (MIT, see examples/LICENSE), kept as the Nix a user
// writes and as the JSON Nix evaluates it to, so that the reference is generated without
// running Nix. Tests check both against the shared corpus and Nix.
//
//go:embed examples/*.nix examples/*.json
var exampleFiles embed.FS

// workedExample is one layout of the worked examples section.
type workedExample struct {
	name  string // file name without .nix in examples/
	about string // markup
}

var workedExamples = []workedExample{
	{"simple-efi", "One disk with a GPT: an EFI system partition and an ext4 root filling the rest."},
	{"luks-lvm", "LUKS on a GPT partition, LVM inside it: the volume group is a top-level entry that the `lvm_pv` joins by name."},
	{"mdadm", "Two disks whose second partitions form a RAID1 array, with a GPT inside the array; partitions of an md array are addressed by md name."},
	{"btrfs-subvolumes", "btrfs with subvolumes mounted at several places, and swap files at the top level and in a subvolume."},
}

// writeWorkedExamples writes the section that shows what a few layouts produce, computed
// by the loader and the NixOS generator.
func writeWorkedExamples(d *document) error {
	d.heading(2, "Worked examples")
	d.para("Layouts from disko's own examples, each with what disko-compile makes of it: the device path of every node that has its own (as the [device path](#device-paths) rules name it), the part of the format and mount scripts written for the layout (`disko-compile scripts`), and the NixOS configuration (`disko-compile nixos-config --nix`). All of it is computed from the layout by the same code the commands run.")
	for _, ex := range workedExamples {
		src, err := exampleFiles.ReadFile("examples/" + ex.name + ".nix")
		if err != nil {
			return fmt.Errorf("docs: worked example %s: %w", ex.name, err)
		}
		devices, err := exampleDevices(ex.name)
		if err != nil {
			return err
		}
		d.heading(3, "Example: "+code(ex.name+".nix"))
		d.para(ex.about)
		d.codeBlock("nix", string(src))
		d.para("**Device paths:**")
		var rows [][]string
		for _, p := range devicePaths(devices) {
			rows = append(rows, []string{code(p.path), code(p.device)})
		}
		d.table([]string{"Option path", "Device"}, rows)
		if err := writeScripts(d, ex.name, devices); err != nil {
			return err
		}
		cfg, err := nixos.Nix(devices)
		if err != nil {
			return fmt.Errorf("docs: worked example %s: NixOS configuration: %w", ex.name, err)
		}
		d.para("**NixOS configuration:**")
		d.codeBlock("nix", withoutLeadingComments(string(cfg)))
	}
	return nil
}

// exampleDevices loads an example as the commands do.
func exampleDevices(name string) (*config.Devices, error) {
	data, err := exampleFiles.ReadFile("examples/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("docs: worked example %s: %w", name, err)
	}
	var wrapped struct {
		Disko struct {
			Devices json.RawMessage `json:"devices"`
		} `json:"disko"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil || wrapped.Disko.Devices == nil {
		return nil, fmt.Errorf("docs: worked example %s: examples/%s.json is not {\"disko\": {\"devices\": ...}}: %v", name, name, err)
	}
	d, err := config.Load(wrapped.Disko.Devices, config.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("docs: worked example %s does not load:\n%w", name, err)
	}
	return d, nil
}

func withoutLeadingComments(s string) string {
	for strings.HasPrefix(s, "#") {
		_, s, _ = strings.Cut(s, "\n")
	}
	return s
}

type devicePath struct {
	path, device string
}

// devicePaths lists the `device` of every node of a loaded layout that differs from the
// device of the node it sits in, found by reflection so that every type is covered.
func devicePaths(d *config.Devices) []devicePath {
	var out []devicePath
	var walk func(path string, v reflect.Value, inherited string)
	walk = func(path string, v reflect.Value, inherited string) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(path, v.Elem(), inherited)
			}
		case reflect.Map:
			keys := v.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				walk(path+"."+nixlit.AttrName(k.String()), v.MapIndex(k), inherited)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i), inherited)
			}
		case reflect.Struct:
			if v.Type() == modeType {
				return
			}
			fields := config.Options(v.Type())
			for _, f := range fields {
				if jsonName(f) == "device" && f.Type.Kind() == reflect.String {
					if dev := v.FieldByIndex(indexIn(v.Type(), f)).String(); dev != "" && dev != inherited {
						out = append(out, devicePath{path, dev})
						inherited = dev
					}
				}
			}
			for _, f := range fields {
				walk(path+"."+jsonName(f), v.FieldByIndex(indexIn(v.Type(), f)), inherited)
			}
		}
	}
	walk("disko.devices", reflect.ValueOf(d).Elem(), "")
	return out
}

// indexIn finds field f (as config.Options returns it, possibly from an embedded struct)
// in t.
func indexIn(t reflect.Type, f reflect.StructField) []int {
	own, _ := t.FieldByName(f.Name)
	return own.Index
}

// writeScripts summarises the format and mount scripts of a layout: the functions written
// for this layout, without the runtime library every script shares.
func writeScripts(d *document, name string, devices *config.Devices) error {
	scripts, err := codegen.Generate(devices, codegen.Options{})
	if err != nil {
		return fmt.Errorf("docs: worked example %s: scripts: %w", name, err)
	}
	d.para("**Scripts:** the part of `format.sh` and `mount.sh` written for this layout (root mount point `/mnt`), each step headed by the option path it comes from; the runtime library every script shares is left out.")
	for _, s := range []struct {
		file   string
		script []byte
	}{{"format.sh", scripts.Format}, {"mount.sh", scripts.Mount}} {
		part, err := layoutFunctions(s.script)
		if err != nil {
			return fmt.Errorf("docs: worked example %s: %s: %w", name, s.file, err)
		}
		d.details(code(s.file)+" for this layout", "bash", part)
	}
	return nil
}

// layoutFunctions returns the functions a script runs at its top level (disko_format,
// disko_mount, ...) and the functions named after them (disko_format_1, ...), as shell.
func layoutFunctions(script []byte) (string, error) {
	f, err := syntax.NewParser(syntax.KeepComments(true)).Parse(bytes.NewReader(script), "")
	if err != nil {
		return "", err
	}
	var entries []string
	for _, st := range f.Stmts {
		if call, ok := st.Cmd.(*syntax.CallExpr); ok && len(call.Args) > 0 {
			if name := call.Args[0].Lit(); strings.HasPrefix(name, "disko_") && name != "disko_die" {
				entries = append(entries, name)
			}
		}
	}
	if len(entries) == 0 {
		return "", fmt.Errorf("no disko_* function is called at the top level")
	}
	var out bytes.Buffer
	printer := syntax.NewPrinter(syntax.Indent(2))
	for _, entry := range entries {
		for _, st := range f.Stmts {
			fn, ok := st.Cmd.(*syntax.FuncDecl)
			if !ok || (fn.Name.Value != entry && !strings.HasPrefix(fn.Name.Value, entry+"_")) {
				continue
			}
			if out.Len() > 0 {
				out.WriteString("\n")
			}
			if err := printer.Print(&out, st); err != nil {
				return "", err
			}
			out.WriteString("\n")
		}
	}
	return out.String(), nil
}
