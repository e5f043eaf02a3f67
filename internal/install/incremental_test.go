package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/plan"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestDiskoModePlanApply runs the disko phase of --disko-mode plan and apply against the
// netns sshd target, on a loop disk formatted with a layout and holding a file: plan
// reports exactly the new partition and changes nothing; a changed format is refused,
// naming its option path, with the disk unchanged; apply creates the partition and mounts
// everything under the mount point on the target with the file intact; a second plan is
// empty; and nothing calls the target's kexec or reboot.
func TestDiskoModePlanApply(t *testing.T) {
	for _, tool := range []string{"losetup", "sfdisk", "sgdisk", "partx", "blkid", "wipefs", "findmnt", "mkfs.ext4", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	tt := testtarget.Start(t, testtarget.Options{})
	dev := testtarget.LoopDevice(t, 256<<20)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	if err := testtarget.RefuseUnlessOwnLoop(dev); err != nil {
		t.Fatal(err)
	}
	layout := func(format, more string) *config.Devices {
		js := fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {
  "root": {"size": "100M", "content": {"type": "filesystem", "format": %q, "mountpoint": "/"}}%s}}}}}`, dev, format, more)
		d, err := config.Load([]byte(js), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	v1 := layout("ext4", "")
	s, err := codegen.Generate(v1, codegen.Options{RootMountpoint: "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	format := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-c", string(s.FormatMount)+"\nhead -c 100000 /dev/urandom > /mnt/keep; sha256sum /mnt/keep")
	sum, err := format.CombinedOutput()
	if err != nil {
		t.Fatalf("format,mount: %v\n%s", err, sum)
	}
	wantSum := strings.Fields(string(sum[bytes.LastIndexByte(bytes.TrimSpace(sum), '\n')+1:]))[0]

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	local := t.TempDir()
	mnt := "/run/anywhere-test-mnt"
	options := func(mode string) *Options {
		return &Options{
			Target: tt.Destination(),
			SSH:    tt.ClientOptions(local),
			Phases: []Phase{PhaseDisko}, DiskoMode: mode, MountPoint: mnt, StateFile: filepath.Join(local, "state.json"),
		}
	}
	// disko runs the disko phase in mode with layout and returns the plan it reported.
	disko := func(mode string, layout *config.Devices) (plan.Plan, string, error) {
		hook := &eventHook{}
		r := connectRun(t, ctx, options(mode), hook)
		err := r.disko(ctx, &artifacts{layout: layout})
		var p plan.Plan
		var text strings.Builder
		for _, e := range hook.events {
			text.WriteString(e.Message + "\n")
			if e.Event == "info" && e.Data["plan"] != nil {
				b, _ := json.Marshal(e.Data["plan"])
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatal(err)
				}
			}
		}
		return p, text.String(), err
	}
	v2 := layout("ext4", `, "srv": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/srv"}}`)
	const srvPath = "disko.devices.disk.main.content.partitions.srv"

	before := testtarget.DiskEdges(t, dev)
	p, text, err := disko("plan", v2)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, text)
	}
	if len(p.Actions) != 1 || p.Actions[0].Path != srvPath || p.Actions[0].Action != "create-partition" || len(p.Refused) != 0 {
		t.Errorf("plan: %+v, want exactly create-partition at %s\n%s", p, srvPath, text)
	}
	if after := testtarget.DiskEdges(t, dev); after != before {
		t.Errorf("plan changed the disk:\nbefore %s\nafter  %s", before, after)
	}

	p, text, err = disko("apply", layout("xfs", ""))
	var ref refusal
	const formatPath = "disko.devices.disk.main.content.partitions.root.content.format"
	if !errors.As(err, &ref) || len(p.Refused) != 1 || p.Refused[0].Path != formatPath || !strings.Contains(text, formatPath) {
		t.Errorf("apply of a changed format: %v, plan %+v; want one refusal at %s\n%s", err, p, formatPath, text)
	}
	if after := testtarget.DiskEdges(t, dev); after != before {
		t.Errorf("a refused apply changed the disk:\nbefore %s\nafter  %s", before, after)
	}

	hook := &eventHook{}
	r := connectRun(t, ctx, options("apply"), hook)
	if err := r.disko(ctx, &artifacts{layout: v2}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() { r.rootOutput(context.Background(), "umount -R "+mnt) })
	out, err := r.rootOutput(ctx, "findmnt -rn -o TARGET | grep -F "+mnt+" | sort; sha256sum "+mnt+"/keep")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, mnt+"\n") || !strings.Contains(out, mnt+"/srv\n") || !strings.Contains(out, wantSum) {
		t.Errorf("after apply on the target, want %s and %s/srv mounted and /keep with sum %s:\n%s", mnt, mnt, wantSum, out)
	}
	if _, err := os.Stat(mnt); err == nil {
		t.Errorf("%s exists on this machine: the target's mounts were not private", mnt)
	}

	if p, text, err := disko("plan", v2); err != nil || len(p.Actions)+len(p.Refused) != 0 {
		t.Errorf("plan after apply: %v, %+v, want empty\n%s", err, p, text)
	}
	if rec := tt.Records(); len(rec) > 0 {
		t.Errorf("stand-ins were called (kexec, reboot…): %q", rec)
	}
}
