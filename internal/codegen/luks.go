package codegen

import (
	"reflect"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// LUKS. The key comes, as with disko, from the first of: settings.keyFile (a file given to
// cryptsetup), an interactive passphrase (askPassword; the password "disko" under
// IN_DISKO_TEST), passwordFile (its content without trailing newlines, as disko's
// $(cat ...) reads it), the deprecated keyFile. Passphrases are handed over as
// /dev/fd/N (a process substitution), never through argv. extraFormatArgs and extraOpenArgs are split at
// whitespace like disko's `toString` does (["--pbkdf argon2id"] is two arguments).
//
// Unlike disko, luksAddKey runs only for additional key files that do not open the
// container yet, so formatting twice does not fill a key slot each time; the check is
// made only for a container that existed before (a key derivation saved on a fresh one).

// luksKey describes how to feed the key to a cryptsetup command.
type luksKey struct {
	pwVar string // variable holding a passphrase, or ""
	args  sh     // --key-file FILE|<(...) [--keyfile-size N] [--keyfile-offset N]
}

func (g *gen) luksKey(n *config.LUKS) luksKey {
	var k luksKey
	var file string
	switch kf, ok := n.Settings["keyFile"]; {
	case ok:
		file = scalar(reflect.ValueOf(kf))
	case n.AskPassword != nil && *n.AskPassword, n.PasswordFile != "":
		k.pwVar = g.newVar()
	default:
		file = n.KeyFile
	}
	if k.pwVar != "" {
		// A process substitution, as disko does: cryptsetup reads the passphrase from
		// /dev/fd/N. (A pipe into --key-file - would fail the pipeline with SIGPIPE when
		// cryptsetup exits without reading, which it may do on success.) disko_secret
		// prints it with xtrace off, so that `bash -x` never shows it.
		k.args = sh(`--key-file <(disko_secret ` + k.pwVar + `)`)
	} else {
		k.args = "--key-file " + Q(file)
	}
	if v, ok := n.Settings["keyFileSize"]; ok {
		k.args += " --keyfile-size " + Q(scalar(reflect.ValueOf(v)))
	}
	if v, ok := n.Settings["keyFileOffset"]; ok {
		k.args += " --keyfile-offset " + Q(scalar(reflect.ValueOf(v)))
	}
	return k
}

// readPassphrase sets the passphrase variable when it is not set yet.
func (g *gen) readPassphrase(w *writer, n *config.LUKS, k luksKey, twice bool) {
	if k.pwVar == "" {
		return
	}
	switch {
	case n.AskPassword != nil && *n.AskPassword:
		extra := sh("")
		if twice {
			extra = " twice"
		}
		w.linef(`[ -n "${%s+x}" ] || disko_password %s %s%s`, sh(k.pwVar), Q(n.Device), sh(k.pwVar), extra)
	default:
		w.linef(`[ -n "${%s+x}" ] || disko_password_file %s %s`, sh(k.pwVar), sh(k.pwVar), Q(n.PasswordFile))
	}
}

func (g *gen) openArgs(n *config.LUKS) sh {
	var args sh
	if b, _ := n.Settings["allowDiscards"].(bool); b {
		args += "--allow-discards "
	}
	if b, _ := n.Settings["bypassWorkqueues"].(bool); b {
		args += "--perf-no_read_workqueue --perf-no_write_workqueue "
	}
	return args + splitThen(n.ExtraOpenArgs)
}

func (g *gen) createLUKS(w *writer, p optPath, n *config.LUKS, dev sh) error {
	k := g.luksKey(n)
	// Every key derivation costs what cryptsetup's benchmark tuned it to (~2 s), so each
	// key is derived no more often than the bare commands do: a container formatted now
	// gets its additional key files at once (luksAddKey derives the key it opens with,
	// which checks it), and only an existing one is asked first whether a key file
	// opens it already.
	cond := "disko_want " + dev + " crypto_LUKS " + p.q()
	format := func() {
		g.readPassphrase(w, n, k, true)
		w.linef("cryptsetup -q luksFormat %s %s%s", dev, splitThen(n.ExtraFormatArgs), k.args)
		for _, extra := range n.AdditionalKeyFiles {
			w.linef("cryptsetup luksAddKey %s %s %s", dev, Q(extra), k.args)
		}
	}
	if len(n.AdditionalKeyFiles) == 0 {
		w.block("if "+cond+"; then", "fi", format)
	} else {
		w.ifElse(cond, format, func() {
			for _, extra := range n.AdditionalKeyFiles {
				w.block("if ! cryptsetup open --test-passphrase --key-file "+Q(extra)+" "+dev+" >/dev/null 2>&1; then", "fi", func() {
					g.readPassphrase(w, n, k, false)
					w.linef("cryptsetup luksAddKey %s %s %s", dev, Q(extra), k.args)
				})
			}
		})
	}
	w.block("if ! disko_mapped "+Q(n.Name)+"; then", "fi", func() {
		g.readPassphrase(w, n, k, false)
		w.linef("cryptsetup open %s %s %s%s --persistent", dev, Q(n.Name), g.openArgs(n), k.args)
	})
	if n.Content == nil {
		return nil
	}
	v := g.newVar()
	w.linef("disko_dev %s %s", sh(v), Q("/dev/mapper/"+n.Name))
	return g.create(w, n.Content, sh(`"$`+v+`"`))
}

func (g *gen) mountLUKS(p optPath, n *config.LUKS, ref *devRef, owners []*hooked) {
	k := g.luksKey(n)
	g.addAction(&action{phase: phaseDev, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(p)
			w.block("if ! disko_mapped "+Q(n.Name)+"; then", "fi", func() {
				dev := g.resolve(w, ref)
				g.readPassphrase(w, n, k, false)
				w.linef("cryptsetup open %s %s %s%s", dev, Q(n.Name), g.openArgs(n), k.args)
			})
		}),
		unmount: g.text(func(w *writer) {
			w.comment(p)
			w.block("if disko_mapped "+Q(n.Name)+"; then", "fi", func() {
				w.linef("cryptsetup close %s", Q(n.Name))
			})
		})})
}
