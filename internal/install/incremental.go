package install

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/plan"
)

// incremental is the disko phase of --disko-mode plan and apply, for a machine whose
// disks already hold data: it probes the disks on the target through the root shell and
// plans the layout against them (internal/plan, docs/incremental.md). plan prints the
// plan and changes nothing; apply runs the plan's actions and the mount script, and
// refuses (changing nothing) when the plan refuses anything.
func (r *run) incremental(ctx context.Context, a *artifacts, mode string) error {
	phase := string(PhaseDisko)
	if a.layout == nil {
		return refusal{fmt.Errorf("--disko-mode %s compares the layout with the disks, but the layout is not known (%s): pass --disko-layout", mode, a.layoutNote)}
	}
	mnt := r.o.mountPoint()
	opts := plan.Options{RootMountpoint: mnt, Codegen: codegen.Options{RootMountpoint: mnt}}
	var p *plan.Plan
	var err error
	if mode == "plan" {
		s := r.rep.Step(phase, "probe the disks and plan the layout against them")
		p, err = plan.Probe(ctx, r.root, a.layout, opts)
		if err := s.Done(err); err != nil {
			return err
		}
	} else {
		w := newOutputWriter(r.stderr, "  "+phase+"| ")
		err = r.withKeys(ctx, func() error {
			s := r.rep.Step(phase, "plan, then apply the actions and mount")
			p, err = plan.Apply(ctx, r.root, a.layout, opts, w)
			w.Flush()
			if errors.Is(err, plan.ErrRefused) {
				return s.Done(nil)
			}
			return s.Done(err)
		})
		if err != nil && p == nil {
			return err
		}
	}
	r.rep.Info(phase, planText(p), map[string]any{"plan": p})
	if len(p.Refused) > 0 {
		return refusal{fmt.Errorf("the plan refuses %d change(s) that would destroy or move data; nothing was changed", len(p.Refused))}
	}
	if err != nil {
		return err
	}
	if mode == "apply" {
		// The disks changed: an install recorded by an earlier run is not of them.
		if r.state != nil {
			if err := r.state.Forget(PhaseInstall, PhaseReboot); err != nil {
				return err
			}
		}
		r.mountedNow = true
	}
	return nil
}

// planText is a plan for people, one line per action and refusal.
func planText(p *plan.Plan) string {
	if len(p.Actions)+len(p.Refused) == 0 {
		return "plan: nothing to do, the disks hold what the layout says"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "plan: %d action(s), %d refused", len(p.Actions), len(p.Refused))
	for _, x := range p.Actions {
		fmt.Fprintf(&b, "\n  + %s\n      %s: %s", x.Path, x.Action, x.Description)
	}
	for _, x := range p.Refused {
		fmt.Fprintf(&b, "\n  ! %s\n      refused: %s", x.Path, x.Reason)
	}
	return b.String()
}
