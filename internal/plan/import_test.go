package plan

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// TestImportStacked imports a probe result with LUKS (open and closed), LVM (linear, thin
// and RAID LVs) and md arrays (assembled, not assembled, holding a partition table):
// the layout describes what was read, notes what was not, and plans empty against the
// same probe result.
func TestImportStacked(t *testing.T) {
	raw, err := os.ReadFile("testdata/stacked-probe.json")
	if err != nil {
		t.Fatal(err)
	}
	var s probe.State
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	layout, notes := s.Layout("/mnt")
	js, err := json.Marshal(layout)
	if err != nil {
		t.Fatal(err)
	}
	got := string(js)
	for _, want := range []string{
		`"crypt":{"type":"8300","size":"600M","start":"133120s","priority":2,"content":{"type":"luks","name":"crypted","initrdUnlock":true,"content":{"type":"lvm_pv","vg":"pool"}}}`,
		`"vault":{"type":"8300","size":"64M","start":"1361920s","priority":3,"content":{"type":"luks","name":"luks-7c1d9e3a-2222-4b8e-8f00-1a2b3c4d5e6f","initrdUnlock":true}}`,
		`"root":{"size":"200M","content":{"type":"filesystem","format":"ext4","mountOptions":["noatime"],"mountpoint":"/"}}`,
		`"swap":{"size":"28M","content":{"type":"swap"`,
		`"tp":{"size":"32M","lvm_type":"thin-pool"}`,
		`"vol":{"size":"100M","lvm_type":"thinlv","pool":"tp","content":{"type":"btrfs"`,
		`"mirror":{"size":"8M","lvm_type":"raid1"}`,
		`"mdadm":{"arr":{"type":"mdadm","level":1,"metadata":"1.2","content":{"type":"filesystem","format":"ext4","mountOptions":["noatime"],"mountpoint":"/srv"}},"tab":{"type":"mdadm","level":0,"metadata":"1.0"}}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("import lacks %s\n%s", want, got)
		}
	}
	for _, want := range []string{"luks-7c1d9e3a-2222-4b8e-8f00-1a2b3c4d5e6f is closed", "md array off is not assembled", "md array tab holds a partition table gpt"} {
		if !strings.Contains(strings.Join(notes, "\n"), want) {
			t.Errorf("no note saying %q in %q", want, notes)
		}
	}
	d, err := config.Load(js, config.LoadOptions{})
	if err != nil {
		t.Fatalf("the imported layout does not load: %v\n%s", err, js)
	}
	if p := Make(d, &s, Options{RootMountpoint: "/mnt"}); len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of the imported layout is not empty: %+v\n%s", p, js)
	}
}
