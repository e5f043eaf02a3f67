package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestPlanFacts: with plan_facts, a create's plan logs in to the target read-only and
// names, in a warning, the disk the install will write; the disk and the machine are left
// as they were (no kexec, no reboot, the disk's first MiB unchanged).
func TestPlanFacts(t *testing.T) {
	requireAcc(t)
	m := newMachine(t, 0)
	key, err := os.ReadFile(m.tt.ClientKeyFile)
	must(t, err)
	before := firstMiB(t, m.loop)
	strs := func(kv ...string) map[string]attr.Value {
		out := map[string]attr.Value{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = types.StringValue(kv[i+1])
		}
		return out
	}
	model := installModel{
		TargetHost:  types.StringValue("root@" + m.tt.Host),
		Flake:       types.StringValue(m.flake + "#test"),
		DiskoLayout: types.StringValue(m.layout),
		Disks:       types.MapValueMust(types.StringType, strs("main", m.loop)),
		Phases:      types.ListValueMust(types.StringType, []attr.Value{types.StringValue("disko"), types.StringValue("install"), types.StringValue("reboot")}),
		MountPoint:  types.StringValue(m.mnt),
		NixOptions:  types.MapValueMust(types.StringType, strs("substituters", "", "build-users-group", "", "sandbox", "false")),
		PlanFacts:   types.BoolValue(true),
	}
	var diags diag.Diagnostics
	planFacts(context.Background(), &model, string(key), &diags)
	if diags.HasError() {
		t.Fatalf("plan_facts failed: %v", diags.Errors())
	}
	warnings := diags.Warnings()
	if len(warnings) != 1 || !strings.Contains(warnings[0].Detail(), m.loop) {
		t.Fatalf("want one warning naming %s, got %v", m.loop, warnings)
	}
	t.Logf("%s:\n%s", warnings[0].Summary(), warnings[0].Detail())
	if !bytes.Equal(before, firstMiB(t, m.loop)) {
		t.Error("plan_facts changed the disk's first MiB")
	}
	for _, r := range m.tt.Records() {
		for _, cmd := range []string{"kexec", "reboot", "poweroff", "halt", "shutdown", "systemctl"} {
			if strings.HasPrefix(r, cmd) {
				t.Errorf("plan_facts ran %q on the target", r)
			}
		}
	}
}

// firstMiB reads the first MiB of a device.
func firstMiB(t *testing.T, dev string) []byte {
	t.Helper()
	f, err := os.Open(dev)
	must(t, err)
	defer f.Close()
	b := make([]byte, 1<<20)
	_, err = io.ReadFull(f, b)
	must(t, err)
	return b
}
