package testvm

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// newKeyPair makes an ed25519 key in OpenSSH formats: the private key as
// sshd and ssh -i read it, the public key as an authorized_keys line.
func newKeyPair() (priv, pub []byte, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "diskoanywhere-testvm")
	if err != nil {
		return nil, nil, err
	}
	sp, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), ssh.MarshalAuthorizedKey(sp), nil
}
