package main

import (
	"bytes"
	"context"
	"sync"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// logWriter sends an install's progress lines (already redacted by
// internal/install) to Terraform's log, one entry per line, tagged with the
// target: TF_LOG=INFO shows what each machine is doing.
type logWriter struct {
	ctx    context.Context
	target string
	mu     sync.Mutex
	buf    bytes.Buffer
}

func newLogWriter(ctx context.Context, target string) *logWriter {
	return &logWriter{ctx: ctx, target: target}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(bytes.TrimRight(w.buf.Next(i+1), "\r\n"))
		tflog.Info(w.ctx, line, map[string]any{"target": w.target})
	}
}

// Flush logs a last line without a newline.
func (w *logWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		tflog.Info(w.ctx, w.buf.String(), map[string]any{"target": w.target})
		w.buf.Reset()
	}
}
