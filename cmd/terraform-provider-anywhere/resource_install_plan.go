package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// ModifyPlan fills in the system an installed machine is to run, evaluated
// locally (nothing is contacted): when it differs from the state, the plan
// shows an update, which deploys it. With plan_facts, a create's plan
// connects read-only and lists the disks the install will wipe.
func (r *installResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy: nothing is contacted, nothing is wiped
	}
	var plan installModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		if plan.PlanFacts.ValueBool() {
			key, d := privateKey(ctx, req.Config)
			resp.Diagnostics.Append(d...)
			planFacts(ctx, &plan, key, &resp.Diagnostics)
		}
		return
	}
	var state installModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Flake.IsUnknown() || (plan.StorePaths != nil && plan.StorePaths.Toplevel.IsUnknown()) {
		return
	}
	o, err := plan.options(ctx, "")
	if err != nil {
		resp.Diagnostics.AddError("anywhere_install "+plan.TargetHost.ValueString(), err.Error())
		return
	}
	system, err := install.SystemPath(ctx, o)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("flake"), "anywhere_install "+plan.TargetHost.ValueString()+": no system", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("system"), types.StringValue(system))...)
	// A newly pinned host_key changes its fingerprint too.
	if !plan.HostKey.IsUnknown() && !plan.HostKey.Equal(state.HostKey) {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(plan.HostKey.ValueString()))
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("host_key"), "anywhere_install "+plan.TargetHost.ValueString()+": host_key is not a public key", err.Error())
			return
		}
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host_key_fingerprint"), types.StringValue(ssh.FingerprintSHA256(k)))...)
	}
}

// planFacts runs the install as a dry run (read-only on the target) and
// turns its plan's disks into a warning on the plan.
func planFacts(ctx context.Context, m *installModel, key string, diags *diag.Diagnostics) {
	host := m.TargetHost.ValueString()
	o, err := m.options(ctx, key)
	if err != nil {
		diags.AddError("anywhere_install "+host, err.Error())
		return
	}
	if o.SSH.ExpectHostKey == nil {
		// Only looking: an unknown key is accepted for this connection
		// and recorded nowhere.
		o.SSH.AcceptNewHostKey = true
	}
	var out bytes.Buffer
	logs := newLogWriter(ctx, host)
	o.DryRun, o.JSON, o.Stdout, o.Stderr = true, true, &out, logs
	err = install.Run(ctx, o)
	logs.Flush()
	if err != nil {
		addRunError(diags, host, "plan_facts", err)
		return
	}
	var lines []string
	dec := json.NewDecoder(&out)
	for {
		var e struct {
			Event string `json:"event"`
			Data  struct {
				Disks     []install.PlanDisk `json:"disks"`
				DisksNote string             `json:"disksNote"`
			} `json:"data"`
		}
		if dec.Decode(&e) != nil {
			break
		}
		if e.Event != "plan" {
			continue
		}
		for _, d := range e.Data.Disks {
			line := fmt.Sprintf("%s %s (%s)", d.Action, d.Device, d.Name)
			if d.Holds != "" {
				line += ", holds " + d.Holds
			}
			if !d.Found {
				line += ", NOT FOUND on the target"
			}
			lines = append(lines, line)
		}
		if e.Data.DisksNote != "" {
			lines = append(lines, e.Data.DisksNote)
		}
	}
	if len(lines) == 0 {
		lines = []string{"the dry run named no disks"}
	}
	diags.AddAttributeWarning(path.Root("plan_facts"), "anywhere_install "+host+": disks the install will write",
		strings.Join(lines, "\n"))
}

// addRunError reports a failed run on this target only; a host key that is
// not the expected one is an error on host_key, with what to do.
func addRunError(diags *diag.Diagnostics, host, doing string, err error) {
	var hk *remote.HostKeyError
	if errors.As(err, &hk) {
		diags.AddAttributeError(path.Root("host_key"),
			"anywhere_install "+host+": wrong host key, nothing was changed on it",
			err.Error()+"\nIf the machine really got a new key, set host_key to it (or remove host_key from the state "+
				"with `terraform state rm` and import the machine again).")
		return
	}
	diags.AddError("anywhere_install "+host+": "+doing+" failed", err.Error())
}
