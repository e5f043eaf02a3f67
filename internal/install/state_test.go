package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateResume(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	in := map[string]string{"disko": "/nix/store/aaa-disko", "system": "/nix/store/bbb-system", "mountPoint": "/mnt"}
	for _, tc := range []struct {
		name     string
		prepare  func(t *testing.T, path string)
		inputs   map[string]string
		restart  bool
		wantDone []Phase
		wantWhy  string
		wantNote string
	}{
		{name: "no file", inputs: in},
		{
			name: "same inputs resume after disko",
			prepare: func(t *testing.T, path string) {
				s, _, _ := LoadState(path, "root@h:22")
				s.Reconcile(in, false)
				s.MarkDone(PhaseDisko, time.Second, now)
			},
			inputs: in, wantDone: []Phase{PhaseDisko},
		},
		{
			name: "another system starts over",
			prepare: func(t *testing.T, path string) {
				s, _, _ := LoadState(path, "root@h:22")
				s.Reconcile(in, false)
				s.MarkDone(PhaseDisko, time.Second, now)
				s.MarkDone(PhaseInstall, time.Second, now)
			},
			inputs:  map[string]string{"disko": "/nix/store/aaa-disko", "system": "/nix/store/ccc-system", "mountPoint": "/mnt"},
			wantWhy: "system /nix/store/bbb-system -> /nix/store/ccc-system",
		},
		{
			name: "a phase run alone keeps the others' inputs",
			prepare: func(t *testing.T, path string) {
				s, _, _ := LoadState(path, "root@h:22")
				s.Reconcile(map[string]string{"disko": "/nix/store/aaa-disko", "mountPoint": "/mnt"}, false)
				s.MarkDone(PhaseDisko, time.Second, now)
			},
			inputs: map[string]string{"system": "/nix/store/bbb-system", "mountPoint": "/mnt"}, wantDone: []Phase{PhaseDisko},
		},
		{
			name: "restart",
			prepare: func(t *testing.T, path string) {
				s, _, _ := LoadState(path, "root@h:22")
				s.Reconcile(in, false)
				s.MarkDone(PhaseDisko, time.Second, now)
			},
			inputs: in, restart: true, wantWhy: "--restart",
		},
		{
			name: "another target's file",
			prepare: func(t *testing.T, path string) {
				s, _, _ := LoadState(path, "root@other:22")
				s.Reconcile(in, false)
				s.MarkDone(PhaseDisko, time.Second, now)
			},
			inputs: in, wantNote: "is for root@other:22",
		},
		{
			name: "garbage",
			prepare: func(t *testing.T, path string) {
				os.MkdirAll(filepath.Dir(path), 0o700)
				os.WriteFile(path, []byte("{"), 0o600)
			},
			inputs:   in,
			wantNote: "not readable",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state", stateFileName("root@h:22"))
			if tc.prepare != nil {
				tc.prepare(t, path)
			}
			s, note, err := LoadState(path, "root@h:22")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(note, tc.wantNote) || (tc.wantNote == "" && note != "") {
				t.Errorf("LoadState note = %q, want %q", note, tc.wantNote)
			}
			why := s.Reconcile(tc.inputs, tc.restart)
			if !strings.Contains(why, tc.wantWhy) || (tc.wantWhy == "" && why != "") {
				t.Errorf("Reconcile = %q, want %q", why, tc.wantWhy)
			}
			for _, p := range AllPhases {
				want := false
				for _, d := range tc.wantDone {
					want = want || d == p
				}
				if s.Done(p) != want {
					t.Errorf("Done(%s) = %v, want %v", p, s.Done(p), want)
				}
			}
			if err := s.Save(); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("state file %s: %v, mode %v; want 0600", path, err, st.Mode())
			}
			again, _, _ := LoadState(path, "root@h:22")
			for k, v := range tc.inputs {
				if again.Inputs[k] != v {
					t.Errorf("saved input %s = %q, want %q", k, again.Inputs[k], v)
				}
			}
		})
	}
}

func TestStateFileName(t *testing.T) {
	for in, want := range map[string]string{
		"root@192.0.2.1:22":  "root@192.0.2.1_22.json",
		"root@[2001:db8::1]": "root@_2001_db8_1.json",
		"../../etc/passwd":   "etc_passwd.json",
		"":                   "target.json",
	} {
		if got := stateFileName(in); got != want {
			t.Errorf("stateFileName(%q) = %q, want %q", in, got, want)
		}
	}
	p, err := DefaultStatePath(func(k string) string { return map[string]string{"XDG_STATE_HOME": "/x"}[k] }, "root@h:22")
	if err != nil || p != "/x/anywhere/root@h_22.json" {
		t.Errorf("DefaultStatePath = %q, %v", p, err)
	}
	p, err = DefaultStatePath(func(k string) string { return map[string]string{"HOME": "/home/a"}[k] }, "root@h:22")
	if err != nil || p != "/home/a/.local/state/anywhere/root@h_22.json" {
		t.Errorf("DefaultStatePath = %q, %v", p, err)
	}
}
