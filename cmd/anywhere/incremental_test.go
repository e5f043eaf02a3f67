package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/plan"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestDiskoModePlanApplyCLI runs `anywhere --disko-mode plan` and `--disko-mode apply`
// against a netns target installed with a layout (disko and install phases) whose root
// holds a file: plan with a layout that adds a partition prints exactly that action and
// changes nothing (the disk's first and last MiB and its table); apply of a changed format
// exits non-zero naming the option path and changes nothing; apply creates the partition
// and mounts it on the target with the file's checksum unchanged; a second plan is empty;
// nothing calls the target's kexec or reboot.
func TestDiskoModePlanApplyCLI(t *testing.T) {
	for _, tool := range []string{"sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	w := newWorld(t, worldOptions{diskBytes: 256 << 20})
	ctx := ctxFor(t, 5*time.Minute)
	dir := t.TempDir()
	layout := func(name, format, more string) string {
		f := filepath.Join(dir, name)
		js := fmt.Sprintf(`{"disk": {"main": {"device": "/dev/unused", "content": {"type": "gpt", "partitions": {
  "root": {"size": "100M", "content": {"type": "filesystem", "format": %q, "mountpoint": "/"}}%s}}}}}`, format, more)
		if err := os.WriteFile(f, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	v1 := layout("v1.json", "ext4", "")
	v2 := layout("v2.json", "ext4", `, "srv": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/srv"}}`)
	xfs := layout("xfs.json", "xfs", "")
	anywhere := func(layout string, extra ...string) result {
		return w.run(ctx, nil, nil, w.args(append([]string{"--flake", w.fix.Flake, "--disko-layout", layout, "--disk", "main", w.loop}, extra...)...)...)
	}
	planOf := func(r result) (plan.Plan, string) {
		var p plan.Plan
		var text strings.Builder
		for _, e := range r.events {
			if e.Event == "info" && e.Data["plan"] != nil {
				text.WriteString(e.Message + "\n")
				b, _ := json.Marshal(e.Data["plan"])
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatal(err)
				}
			}
		}
		return p, text.String()
	}

	if r := anywhere(v1, "--phases", "disko,install"); r.code != 0 {
		t.Fatalf("install: %s\n%s", r, w.tt.Logs())
	}
	sum := w.sh("head -c 100000 /dev/urandom > " + w.mnt + "/keep && sync && sha256sum " + w.mnt + "/keep")

	before := testtarget.DiskEdges(t, w.loop)
	r := anywhere(v2, "--phases", "disko", "--disko-mode", "plan")
	p, text := planOf(r)
	const srvPath = "disko.devices.disk.main.content.partitions.srv"
	if r.code != 0 || len(p.Actions) != 1 || p.Actions[0].Path != srvPath || p.Actions[0].Action != "create-partition" || len(p.Refused) != 0 {
		t.Errorf("plan: %+v, want exactly create-partition at %s\n%s\n%s", p, srvPath, text, r)
	}
	t.Logf("plan (exit %d):\n%s", r.code, text)
	if after := testtarget.DiskEdges(t, w.loop); after != before {
		t.Errorf("plan changed the disk:\nbefore %s\nafter  %s", before, after)
	}

	r = anywhere(xfs, "--phases", "disko", "--disko-mode", "apply")
	p, text = planOf(r)
	const formatPath = "disko.devices.disk.main.content.partitions.root.content.format"
	if r.code == 0 || len(p.Refused) != 1 || p.Refused[0].Path != formatPath || !strings.Contains(text+r.stderr, formatPath) {
		t.Errorf("apply of a changed format: plan %+v; want a non-zero exit and one refusal at %s\n%s\n%s", p, formatPath, text, r)
	}
	t.Logf("refused apply (exit %d):\n%s", r.code, text)
	if after := testtarget.DiskEdges(t, w.loop); after != before {
		t.Errorf("a refused apply changed the disk:\nbefore %s\nafter  %s", before, after)
	}

	if r = anywhere(v2, "--phases", "disko", "--disko-mode", "apply"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	if got := w.sh("findmnt -n -o SOURCE,FSTYPE " + w.mnt + "/srv"); got != w.loop+"p2 ext4" {
		t.Errorf("findmnt %s/srv = %q, want %sp2 ext4", w.mnt, got, w.loop)
	}
	if got := w.sh("sha256sum " + w.mnt + "/keep"); got != sum {
		t.Errorf("after apply: %s, want %s", got, sum)
	}

	r = anywhere(v2, "--phases", "disko", "--disko-mode", "plan")
	if p, text := planOf(r); r.code != 0 || len(p.Actions)+len(p.Refused) != 0 || !strings.Contains(text, "nothing to do") {
		t.Errorf("plan after apply: %+v, want empty\n%s\n%s", p, text, r)
	}
	if rec := w.tt.Records(); len(rec) > 0 {
		t.Errorf("stand-ins were called (kexec, reboot…): %q", rec)
	}
}
