package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// ErrRefused is returned (wrapped) by Apply when the plan refuses something; the disks
// are then untouched.
var ErrRefused = errors.New("the plan refuses changes that would destroy or move data; nothing was changed")

// Disks are the layout's disks as the probe takes them: name -> device.
func Disks(d *config.Devices) map[string]string {
	disks := map[string]string{}
	for name, disk := range d.Disk {
		disks[name] = disk.Device
	}
	return disks
}

// Probe probes the layout's disks through r and plans the layout against them.
func Probe(ctx context.Context, r probe.Runner, d *config.Devices, opts Options) (*Plan, error) {
	s, err := probe.Probe(ctx, r, Disks(d))
	if err != nil {
		return nil, err
	}
	return Make(d, s, opts), nil
}

// Apply plans again, and when nothing is refused runs the actions and then the layout's
// mount script (mounting everything under opts.Codegen.RootMountpoint) through r; the
// scripts' progress goes to log. With a refusal it changes nothing and returns the plan
// with an error wrapping ErrRefused.
func Apply(ctx context.Context, r probe.Runner, d *config.Devices, opts Options, log io.Writer) (*Plan, error) {
	p, err := Probe(ctx, r, d, opts)
	if err != nil {
		return nil, err
	}
	if len(p.Refused) > 0 {
		return p, fmt.Errorf("%d refused: %w", len(p.Refused), ErrRefused)
	}
	if len(p.Actions) > 0 {
		if err := r.Run(ctx, "bash -s", bytes.NewReader(p.Script()), log, log); err != nil {
			return p, fmt.Errorf("applying the plan: %w", err)
		}
	}
	scripts, err := codegen.Generate(d, opts.Codegen)
	if err != nil {
		return p, err
	}
	if err := r.Run(ctx, "bash -s", bytes.NewReader(scripts.Mount), log, log); err != nil {
		return p, fmt.Errorf("mounting: %w", err)
	}
	return p, nil
}
