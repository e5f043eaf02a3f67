package install

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestWaitRestartOtherKey: a target that is already back with other host keys when the
// wait for it to go down tries it is reported with its new key, and the kexec phase
// explains that key as the wait for the installer does: the installer did not carry
// the keys over, refusing to continue. In CI the installer once came up first, and the
// run ended with only "the target answers with another host key".
func TestWaitRestartOtherKey(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	o := tt.ClientOptions(t.TempDir())
	target, err := remote.ParseTarget(tt.Destination())
	if err != nil {
		t.Fatal(err)
	}
	old := tt.HostKeys[0]
	if err := tt.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	tt.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewReporter(io.Discard, nil).Step("kexec", "wait for the target to go down")
	seen, key, err := waitRestart(ctx, target, o, old, "the old boot id", newWatch(s))
	if err != nil || seen != restartOtherKey || key == nil || !bytes.Equal(key.Marshal(), tt.HostKeys[0].Marshal()) {
		t.Fatalf("waitRestart = %v, key %v, %v; want restartOtherKey with the new key %s", seen, key, err, fingerprint(tt.HostKeys[0]))
	}
	msg := hostKeyChanged(key, old)
	for _, want := range []string{"after the kexec the target presents host key " + fingerprint(key), "before it presented " + fingerprint(old), "refusing to continue"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}
