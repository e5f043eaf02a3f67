package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/plan"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// The incremental commands: plan and apply a changed layout on disks that already hold
// data, and import a layout from disks as they are. They read the devices on this
// machine; see docs/incremental.md for the decision table.

// errRefused makes `plan` exit 1 when the plan refuses something.
var errRefused = errors.New("the plan refuses changes that would destroy or move data (see docs/incremental.md)")

func planOptions(c *cli.Context) plan.Options {
	return plan.Options{RootMountpoint: c.String("root-mountpoint"), Codegen: scriptOptions(c)}
}

func planCommand(load func(*cli.Context) (*config.Devices, error), stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "compare a layout with what the disks hold and print what apply would do, without changing anything",
		ArgsUsage: "LAYOUT",
		Description: `Exit status 0 when nothing is refused (an empty plan included), 1 when something is.
   Example: disko-compile plan --disk main=/dev/vdb ./disk-config.nix`,
		Flags: append(append(layoutFlags(), scriptFlags()...),
			&cli.BoolFlag{Name: "json", Usage: `print {"actions": [{"path", "action", "description"}], "refused": [{"path", "reason"}]}`},
			&cli.BoolFlag{Name: "script", Usage: "print the shell script apply would run for the actions"}),
		OnUsageError: cliargs.OnUsageError,
		Action: func(c *cli.Context) error {
			d, err := load(c)
			if err != nil {
				return err
			}
			p, err := plan.Probe(c.Context, probe.Local{}, d, planOptions(c))
			if err != nil {
				return err
			}
			switch {
			case c.Bool("json"):
				err = writeJSON(stdout, p)
			case c.Bool("script"):
				_, err = stdout.Write(p.Script())
			default:
				printPlan(stdout, p)
			}
			if err != nil {
				return err
			}
			if len(p.Refused) > 0 {
				return errRefused
			}
			return nil
		},
	}
}

func applyCommand(load func(*cli.Context) (*config.Devices, error), stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "plan, then (only when nothing is refused) run the actions and mount everything under the root mount point",
		ArgsUsage: "LAYOUT",
		Description: `The incremental counterpart of format,mount: it never destroys data. Running it again changes nothing.
   Example: disko-compile apply --disk main=/dev/vdb --root-mountpoint /mnt ./disk-config.nix`,
		Flags:        append(layoutFlags(), scriptFlags()...),
		OnUsageError: cliargs.OnUsageError,
		Action: func(c *cli.Context) error {
			d, err := load(c)
			if err != nil {
				return err
			}
			p, err := plan.Apply(c.Context, probe.Local{}, d, planOptions(c), stderr)
			if p != nil {
				printPlan(stdout, p)
			}
			return err
		},
	}
}

func importCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "print a layout that describes the given disks as they are (Nix, or JSON with --json)",
		Description: `Planning the printed layout against the same disks is empty.
   Example: disko-compile import --disk main=/dev/vda --root-mountpoint /mnt > disk-config.nix`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "disk", Required: true, Usage: "read `NAME=DEVICE` as disk NAME of the layout; repeatable"},
			&cli.StringFlag{Name: "root-mountpoint", Value: "/", Usage: "mounts below `DIR` become the layout's mount points (relative to it)"},
			&cli.BoolFlag{Name: "json", Usage: "print the disko.devices tree as JSON"},
		},
		OnUsageError: cliargs.OnUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cliargs.UsageError{Err: fmt.Errorf("import takes no arguments, got %s", strings.Join(c.Args().Slice(), " "))}
			}
			disks := map[string]string{}
			for _, m := range c.StringSlice("disk") {
				name, dev, ok := strings.Cut(m, "=")
				if !ok || name == "" || dev == "" {
					return cliargs.UsageError{Err: fmt.Errorf("--disk needs NAME=DEVICE, got %q", m)}
				}
				disks[name] = dev
			}
			s, err := probe.Probe(c.Context, probe.Local{}, disks)
			if err != nil {
				return err
			}
			layout, notes := s.Layout(c.String("root-mountpoint"))
			for _, n := range notes {
				fmt.Fprintln(stderr, "disko-compile import:", n)
			}
			raw, err := json.Marshal(layout)
			if err != nil {
				return err
			}
			var tree any
			if err := json.Unmarshal(raw, &tree); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(stdout, tree)
			}
			expr, err := nixos.Expr(map[string]any{"disko": map[string]any{"devices": tree}})
			if err != nil {
				return err
			}
			// The notes (a closed LUKS container, an inactive LV, ...) also go into the
			// file, where whoever edits the layout reads them.
			fmt.Fprintln(stdout, "# Written by `disko-compile import` from the disks as they were.")
			for _, n := range notes {
				fmt.Fprintln(stdout, "# Note:", strings.ReplaceAll(n, "\n", "\n#   "))
			}
			fmt.Fprintln(stdout, expr)
			return nil
		},
	}
}

// printPlan writes a plan for people: one line per action and per refusal.
func printPlan(w io.Writer, p *plan.Plan) {
	if len(p.Actions)+len(p.Refused) == 0 {
		fmt.Fprintln(w, "nothing to do: the disks hold what the layout says")
		return
	}
	fmt.Fprintf(w, "%d actions, %d refused\n", len(p.Actions), len(p.Refused))
	for _, a := range p.Actions {
		fmt.Fprintf(w, "  + %s\n      %s: %s\n", a.Path, a.Action, a.Description)
	}
	for _, r := range p.Refused {
		fmt.Fprintf(w, "  ! %s\n      refused: %s\n", r.Path, r.Reason)
	}
}
