package installvm

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Mount is one file system the installed system must have mounted.
type Mount struct {
	Mountpoint, Device, FSType string
}

// LayoutMounts are the file systems of the layout's NixOS configuration (fileSystems).
func LayoutMounts(d *config.Devices) ([]Mount, error) {
	cfg, err := nixos.Config(d)
	if err != nil {
		return nil, err
	}
	fss, _ := cfg["fileSystems"].(map[string]any)
	var out []Mount
	for _, mp := range slices.Sorted(maps.Keys(fss)) {
		fs, _ := fss[mp].(map[string]any)
		m := Mount{Mountpoint: mp}
		m.Device, _ = fs["device"].(string)
		m.FSType, _ = fs["fsType"].(string)
		out = append(out, m)
	}
	return out, nil
}

// CheckMounts logs in to the installed system and checks that each of want is mounted
// once, with its file system type, from its device (compared as the kernel's device
// node, since the system may name it another way: /dev/pool/root is /dev/dm-1).
func (m *Machine) CheckMounts(ctx context.Context, want []Mount) error {
	cmd := "findmnt --json --list -o TARGET,SOURCE,FSTYPE,FSROOT\necho @@@\n"
	for _, w := range want {
		if strings.HasPrefix(w.Device, "/dev/") {
			cmd += resolve(w.Device)
		}
	}
	out, _, err := m.Run(ctx, cmd)
	if err != nil {
		return err
	}
	fm, resolved, _ := strings.Cut(string(out), "@@@\n")
	var got struct {
		Filesystems []struct{ Target, Source, Fstype, Fsroot string }
	}
	if err := json.Unmarshal([]byte(fm), &got); err != nil {
		return fmt.Errorf("findmnt --json: %w", err)
	}
	nodes := strings.Fields(resolved)
	var sources []string
	for _, f := range got.Filesystems {
		if strings.HasPrefix(f.Source, "/dev/") {
			sources = append(sources, strings.TrimSuffix(f.Source, "["+f.Fsroot+"]"))
		}
	}
	real := map[string]string{}
	if len(sources) > 0 {
		cmd := ""
		for _, s := range sources {
			cmd += resolve(s)
		}
		out, _, err := m.Run(ctx, cmd)
		if err != nil {
			return err
		}
		for i, r := range strings.Fields(string(out)) {
			if i < len(sources) {
				real[sources[i]] = r
			}
		}
	}
	var problems []string
	i := 0
	for _, w := range want {
		var at []int
		for j, f := range got.Filesystems {
			if f.Target == w.Mountpoint {
				at = append(at, j)
			}
		}
		node := ""
		if strings.HasPrefix(w.Device, "/dev/") && i < len(nodes) {
			node = nodes[i]
			i++
		}
		if len(at) != 1 {
			problems = append(problems, fmt.Sprintf("%s: mounted %d times, want once (%s %s)", w.Mountpoint, len(at), w.FSType, w.Device))
			continue
		}
		f := got.Filesystems[at[0]]
		if f.Fstype != w.FSType {
			problems = append(problems, fmt.Sprintf("%s: file system %s, want %s", w.Mountpoint, f.Fstype, w.FSType))
		}
		src := strings.TrimSuffix(f.Source, "["+f.Fsroot+"]")
		switch {
		case node == "":
			if src != w.Device {
				problems = append(problems, fmt.Sprintf("%s: mounted from %s, want %s", w.Mountpoint, f.Source, w.Device))
			}
		case node == "missing":
			problems = append(problems, fmt.Sprintf("%s: its device %s does not exist", w.Mountpoint, w.Device))
		case real[src] != node && w.FSType != "btrfs": // btrfs shows one of its devices
			problems = append(problems, fmt.Sprintf("%s: mounted from %s (%s), want %s (%s)", w.Mountpoint, f.Source, real[src], w.Device, node))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the installed system's mounts differ from the layout:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// resolve is a command that prints the device node a /dev path leads to, or
// "missing": one readlink per path, as BusyBox's takes only one.
func resolve(p string) string {
	q := shell.Quote(p)
	return "if [ -e " + q + " ]; then readlink -f " + q + "; else echo missing; fi\n"
}
