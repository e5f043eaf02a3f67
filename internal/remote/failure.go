package remote

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Stage is the part of a connection attempt that failed.
type Stage int

// The stages of a connection attempt, in order.
const (
	StageTCP       Stage = iota // the TCP connect
	StageHandshake              // the SSH key exchange and host key check
	StageAuth                   // the login
)

// DialError is a failed connection attempt and the stage it failed in, so
// that a wait for a restarting machine can say what the last try got.
type DialError struct {
	Stage Stage
	Err   error
}

func (e *DialError) Error() string { return e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// What a failed connection attempt got, as FailureKind names it.
const (
	FailTCPRefused  = "TCP refused"
	FailTCPTimeout  = "TCP timeout"
	FailUnreachable = "no route to host"
	FailNoName      = "name not resolved"
	FailTCP         = "TCP connect failed"
	FailHandshake   = "SSH handshake failed"
	FailHostKey     = "host key mismatch"
	FailAuth        = "SSH login refused"
	FailOther       = "error"
)

// FailureKind names what a failed connection attempt got, in the words a
// user checks against: the TCP connect was refused or timed out, the SSH
// handshake failed, the host key did not match, the login was refused.
func FailureKind(err error) string {
	var hke *HostKeyError
	if errors.As(err, &hke) {
		return FailHostKey
	}
	var de *DialError
	if !errors.As(err, &de) {
		return FailOther
	}
	switch de.Stage {
	case StageHandshake:
		return FailHandshake
	case StageAuth:
		return FailAuth
	}
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailTCPRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return FailUnreachable
	case errors.As(err, &dns):
		return FailNoName
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailTCPTimeout
	}
	return FailTCP
}
