package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// LoadOptions change a layout before it is checked, as command-line flags do.
type LoadOptions struct {
	// DiskDevices overrides disk.NAME.device (disko's --disk NAME DEVICE), so that one
	// layout can be applied to the devices a machine really has.
	DiskDevices map[string]string
}

// Load turns the JSON of disko.devices into a valid model with every default applied.
// On failure the error is Problems: every problem found, each at its option path.
func Load(data []byte, opts LoadOptions) (*Devices, error) {
	d, probs := decodeDevices(data)
	if d == nil {
		return nil, probs
	}
	for _, name := range slices.Sorted(maps.Keys(opts.DiskDevices)) {
		disk, ok := d.Disk[name]
		if !ok {
			msg := fmt.Sprintf("--disk %s=%s names no disk of this layout", name, opts.DiskDevices[name])
			if s := suggest(name, slices.Sorted(maps.Keys(d.Disk))); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (disks: " + strings.Join(slices.Sorted(maps.Keys(d.Disk)), ", ") + ")"
			}
			probs.add(rootPath.Field("disk"), "%s", msg)
			continue
		}
		disk.Device = opts.DiskDevices[name]
	}
	applyDefaults(d, &probs)
	var checks Problems
	validate(d, &checks)
	probs = append(probs, checks.outside(probs)...)
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
		return nil, probs
	}
	return d, nil
}
