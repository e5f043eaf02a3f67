package testvm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// StartT boots a guest for a test and stops it in t.Cleanup. It skips the
// test when this machine has no qemu or no Debian kernel (the message names
// the packages to install) and fails it on any other error. The boot is
// bounded by the test's deadline; progress and, when the test failed, the
// tail of the guest's console go to the test log.
func StartT(t testing.TB, opts Options) *VM {
	t.Helper()
	if opts.Log == nil {
		opts.Log = &testLog{t: t}
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	vm, err := Start(ctx, opts)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (kept at %s), last lines:\n%s", vm.keepConsole(), tailFile(vm.ConsoleLog(), 40))
		}
		if err := vm.Stop(); err != nil {
			t.Errorf("testvm: stop: %v", err)
		}
	})
	return vm
}

// ContextT is a context that ends 10 s before the test's deadline (if it
// has one), so a hung guest command fails the test with its own message
// instead of the test binary's panic.
func ContextT(t testing.TB) (context.Context, context.CancelFunc) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			return context.WithDeadline(context.Background(), dl.Add(-10*time.Second))
		}
	}
	return context.WithCancel(context.Background())
}

// LogT is a Log for Options and BuildOptions that turns the rig's progress
// lines into t.Log calls, so they show under the test that caused them.
func LogT(t testing.TB) io.Writer { return &testLog{t: t} }

// testLog turns progress lines into t.Log calls.
type testLog struct {
	t   testing.TB
	mu  sync.Mutex
	buf []byte
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}
