package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// stateVersion is bumped when the file's meaning changes; an older file is
// then ignored (the run starts over) rather than misread.
const stateVersion = 1

// State is what a run has done to one target, saved after every phase so
// that a re-run after a failure continues where it stopped. Inputs are the
// store paths and choices the phases ran with: a re-run with other inputs
// starts over, since a half-installed machine of another configuration is
// not something to continue.
type State struct {
	Version int                    `json:"version"`
	Target  string                 `json:"target"`
	HostKey string                 `json:"hostKey,omitempty"` // authorized_keys form, as first seen
	Inputs  map[string]string      `json:"inputs"`
	Phases  map[string]*PhaseState `json:"phases"`

	path string
}

// PhaseState records one finished phase.
type PhaseState struct {
	Done     bool      `json:"done"`
	Finished time.Time `json:"finished"`
	Took     float64   `json:"took_s"`
}

// DefaultStatePath is $XDG_STATE_HOME/anywhere/<target>.json, else
// ~/.local/state/anywhere/<target>.json.
func DefaultStatePath(getenv func(string) string, target string) (string, error) {
	dir := getenv("XDG_STATE_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("no HOME and no XDG_STATE_HOME for the state file; pass --state-file PATH")
			}
			home = h
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "anywhere", stateFileName(target)), nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9@._-]+`)

// stateFileName makes a file name of a destination like root@[::1]:22.
func stateFileName(target string) string {
	name := strings.Trim(unsafeName.ReplaceAllString(target, "_"), "_.")
	if name == "" {
		name = "target"
	}
	return name + ".json"
}

// LoadState reads the state file at path. A missing file, or one written
// by another version or for another target, gives a fresh state (the
// reason is returned as a note for the user).
func LoadState(path, target string) (*State, string, error) {
	fresh := &State{Version: stateVersion, Target: target, Inputs: map[string]string{}, Phases: map[string]*PhaseState{}, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading the state file %s: %w", path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return fresh, fmt.Sprintf("the state file %s is not readable (%v); starting over", path, err), nil
	}
	switch {
	case s.Version != stateVersion:
		return fresh, fmt.Sprintf("the state file %s is from another version (%d); starting over", path, s.Version), nil
	case s.Target != target:
		return fresh, fmt.Sprintf("the state file %s is for %s, not %s; starting over", path, s.Target, target), nil
	}
	if s.Inputs == nil {
		s.Inputs = map[string]string{}
	}
	if s.Phases == nil {
		s.Phases = map[string]*PhaseState{}
	}
	s.path = path
	return &s, "", nil
}

// Path is where the state is saved.
func (s *State) Path() string { return s.path }

// Reconcile compares the inputs of this run with the recorded ones. When
// an input known to both differs (or restart is set) the recorded progress
// is dropped and the reason returned; otherwise it is kept for resuming.
// Inputs this run does not know (a phase not selected, e.g. the system
// when only --phases disko runs) keep their recorded value, so that
// phases run one invocation at a time still resume each other.
func (s *State) Reconcile(inputs map[string]string, restart bool) string {
	var why string
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(inputs)) {
		if old, ok := s.Inputs[k]; ok && old != inputs[k] {
			changed = append(changed, fmt.Sprintf("%s %s -> %s", k, orNone(old), orNone(inputs[k])))
		}
	}
	switch {
	case restart && len(s.Phases) > 0:
		why = "--restart: starting over"
	case len(s.Phases) > 0 && len(changed) > 0:
		why = "the inputs changed since the last run (" + strings.Join(changed, "; ") + "); starting over"
	}
	if why != "" {
		s.Phases = map[string]*PhaseState{}
		s.Inputs = map[string]string{}
	}
	maps.Copy(s.Inputs, inputs)
	return why
}

// Done reports whether phase finished in an earlier run with these inputs.
func (s *State) Done(phase Phase) bool {
	p := s.Phases[string(phase)]
	return p != nil && p.Done
}

// DoneAt says when phase finished, for messages.
func (s *State) DoneAt(phase Phase) time.Time {
	if p := s.Phases[string(phase)]; p != nil {
		return p.Finished
	}
	return time.Time{}
}

// MarkDone records a finished phase and saves the file.
func (s *State) MarkDone(phase Phase, took time.Duration, now time.Time) error {
	s.Phases[string(phase)] = &PhaseState{Done: true, Finished: now.UTC(), Took: took.Seconds()}
	return s.Save()
}

// Forget drops a phase's record (e.g. the disks were wiped again, so the
// install must be redone) and saves the file.
func (s *State) Forget(phases ...Phase) error {
	for _, p := range phases {
		delete(s.Phases, string(p))
	}
	return s.Save()
}

// Save writes the file atomically (0600: it names the target and its key).
func (s *State) Save() error {
	if s.path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("saving the state file: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".anywhere-state-*")
	if err != nil {
		return fmt.Errorf("saving the state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the state file %s: %w", s.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving the state file %s: %w", s.path, err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("saving the state file %s: %w", s.path, err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
