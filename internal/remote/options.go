package remote

import (
	"crypto/rsa"
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// optionUse is what the built-in client does with an OpenSSH option.
type optionUse int

const (
	// honoured options change what the client does, as in OpenSSH.
	honoured optionUse = iota
	// ignored options have no effect on a built-in client that never
	// multiplexes through a socket, forwards, opens a terminal or runs local
	// commands. --ssh-option prints one warning for each; in ssh_config they
	// are normal (Debian's own /etc/ssh/ssh_config sets SendEnv and
	// GSSAPIAuthentication) and only logged with --debug.
	ignored
	// refused options would change security or where the connection goes in a
	// way the client cannot follow, so ignoring them would surprise: they are
	// an error from either source, unless their value is "none".
	refused
)

// sshOption is one row of the classification below.
type sshOption struct {
	name string // OpenSSH's spelling, for messages
	use  optionUse
	// jump: an --ssh-option value also applies to ProxyJump hosts; the
	// others (User, Port, HostName, passwords…) describe the final target.
	jump bool
	// alias names the option this one is an older spelling of (lower case).
	alias string
	// why says what the option does here: for ignored and refused options
	// it is shown to the user, with what to do instead.
	why string
}

// Reasons shared by several options.
const (
	whyMux       = "the built-in client keeps one connection per host open for the whole run and runs every command as a session on it; there is no control socket"
	whyForward   = "the installer sets up no port forwarding or tunnels"
	whyX11       = "X11 is never forwarded"
	whyGSSAPI    = "GSSAPI (Kerberos) is never used: keys, ssh-agent or the --env-password password authenticate"
	whyHostbased = "host-based authentication is never offered"
	whyCanon     = "host names are not canonicalized: ssh_config Host blocks match the name as written and the system resolver looks it up"
	whyLog       = "use --debug to log connections and commands"
	whyEscape    = "there is no interactive session to escape from"
	whyLocalCmd  = "no local command is run after connecting"
	whySession   = "the installer opens its own sessions and decides per command whether it needs a terminal"
	whyObsolete  = "it was removed from OpenSSH"
	whyStructure = "it is ssh_config structure, not an option; write it into a file and pass --ssh-config FILE"
	whyCommands  = "the built-in client never runs local commands"
)

// sshOptions classifies every OpenSSH client option (ssh_config(5) of
// OpenSSH 10, plus the Debian/Fedora GSSAPI patches, Apple's UseKeychain
// and removed names people still carry), keyed by the lower-case name
// because OpenSSH option names are case-insensitive. A name missing here is
// not an OpenSSH option: --ssh-option refuses it.
var sshOptions = map[string]sshOption{
	// Honoured.
	"addressfamily":                   {name: "AddressFamily", use: honoured, jump: true, why: "any, inet (IPv4 only) or inet6 (IPv6 only) for direct connections; through ProxyJump the jump host resolves the name"},
	"batchmode":                       {name: "BatchMode", use: honoured, jump: true, why: "never asks about an unknown host key"},
	"casignaturealgorithms":           {name: "CASignatureAlgorithms", use: honoured, jump: true, why: "signature algorithms accepted from a CA on host certificates"},
	"challengeresponseauthentication": {name: "ChallengeResponseAuthentication", use: honoured, alias: "kbdinteractiveauthentication"},
	"ciphers":                         {name: "Ciphers", use: honoured, jump: true, why: "OpenSSH list syntax (a,b / +a / -a / ^a, with * and ?) over golang.org/x/crypto/ssh's ciphers"},
	"connectionattempts":              {name: "ConnectionAttempts", use: honoured, jump: true, why: "TCP connection tries, one second apart, each bounded by ConnectTimeout"},
	"connecttimeout":                  {name: "ConnectTimeout", use: honoured, jump: true, why: "bounds the TCP connect and the SSH handshake"},
	"globalknownhostsfile":            {name: "GlobalKnownHostsFile", use: honoured, jump: true},
	"hashknownhosts":                  {name: "HashKnownHosts", use: honoured, jump: true},
	"hostkeyalgorithms":               {name: "HostKeyAlgorithms", use: honoured, jump: true, why: "narrowed further to the key types known_hosts has for the host"},
	"hostkeyalias":                    {name: "HostKeyAlias", use: honoured},
	"hostname":                        {name: "HostName", use: honoured},
	"identitiesonly":                  {name: "IdentitiesOnly", use: honoured, jump: true},
	"identityagent":                   {name: "IdentityAgent", use: honoured, jump: true},
	"identityfile":                    {name: "IdentityFile", use: honoured},
	"kbdinteractiveauthentication":    {name: "KbdInteractiveAuthentication", use: honoured, why: "keyboard-interactive answers with the --env-password password"},
	"kexalgorithms":                   {name: "KexAlgorithms", use: honoured, jump: true, why: "OpenSSH list syntax over golang.org/x/crypto/ssh's key exchanges"},
	"macs":                            {name: "MACs", use: honoured, jump: true, why: "OpenSSH list syntax over golang.org/x/crypto/ssh's MACs"},
	"passwordauthentication":          {name: "PasswordAuthentication", use: honoured, why: "no keeps the --env-password password from being sent"},
	"port":                            {name: "Port", use: honoured},
	"preferredauthentications":        {name: "PreferredAuthentications", use: honoured, why: "order and choice of publickey, password and keyboard-interactive"},
	"proxyjump":                       {name: "ProxyJump", use: honoured},
	"pubkeyacceptedalgorithms":        {name: "PubkeyAcceptedAlgorithms", use: honoured, jump: true, why: "keys whose type is not listed are not offered"},
	"pubkeyacceptedkeytypes":          {name: "PubkeyAcceptedKeyTypes", use: honoured, alias: "pubkeyacceptedalgorithms"},
	"pubkeyauthentication":            {name: "PubkeyAuthentication", use: honoured},
	"requiredrsasize":                 {name: "RequiredRSASize", use: honoured, jump: true, why: "smaller RSA host keys are refused and smaller RSA user keys not offered"},
	"serveralivecountmax":             {name: "ServerAliveCountMax", use: honoured, jump: true},
	"serveraliveinterval":             {name: "ServerAliveInterval", use: honoured, jump: true},
	"stricthostkeychecking":           {name: "StrictHostKeyChecking", use: honoured, jump: true},
	"user":                            {name: "User", use: honoured},
	"userknownhostsfile":              {name: "UserKnownHostsFile", use: honoured, jump: true, why: "none means /dev/null: nothing is read or recorded"},

	// Ignored: no effect for a built-in client.
	"addkeystoagent":              {name: "AddKeysToAgent", use: ignored, why: "keys are never added to ssh-agent"},
	"canonicaldomains":            {name: "CanonicalDomains", use: ignored, why: whyCanon},
	"canonicalizefallbacklocal":   {name: "CanonicalizeFallbackLocal", use: ignored, why: whyCanon},
	"canonicalizehostname":        {name: "CanonicalizeHostname", use: ignored, why: whyCanon},
	"canonicalizemaxdots":         {name: "CanonicalizeMaxDots", use: ignored, why: whyCanon},
	"canonicalizepermittedcnames": {name: "CanonicalizePermittedCNAMEs", use: ignored, why: whyCanon},
	"certificatefile":             {name: "CertificateFile", use: ignored, why: "certificates are not read from files; add the key with its certificate to ssh-agent"},
	"channeltimeout":              {name: "ChannelTimeout", use: ignored, why: "the installer closes its own sessions; idle channels are not timed out"},
	"checkhostip":                 {name: "CheckHostIP", use: ignored, why: "known_hosts is checked for the host name (or HostKeyAlias), not also for its IP address"},
	"clearallforwardings":         {name: "ClearAllForwardings", use: ignored, why: whyForward},
	"compression":                 {name: "Compression", use: ignored, why: "golang.org/x/crypto/ssh does not implement compression"},
	"controlmaster":               {name: "ControlMaster", use: ignored, why: whyMux},
	"controlpath":                 {name: "ControlPath", use: ignored, why: whyMux},
	"controlpersist":              {name: "ControlPersist", use: ignored, why: whyMux},
	"dynamicforward":              {name: "DynamicForward", use: ignored, why: whyForward},
	"enableescapecommandline":     {name: "EnableEscapeCommandline", use: ignored, why: whyEscape},
	"enablesshkeysign":            {name: "EnableSSHKeysign", use: ignored, why: whyHostbased},
	"escapechar":                  {name: "EscapeChar", use: ignored, why: whyEscape},
	"exitonforwardfailure":        {name: "ExitOnForwardFailure", use: ignored, why: whyForward},
	"fingerprinthash":             {name: "FingerprintHash", use: ignored, why: "fingerprints are always shown as SHA256"},
	"forkafterauthentication":     {name: "ForkAfterAuthentication", use: ignored, why: "the installer stays in the foreground"},
	"forwardagent":                {name: "ForwardAgent", use: ignored, why: "ssh-agent is never forwarded: nothing on the target needs it"},
	"forwardx11":                  {name: "ForwardX11", use: ignored, why: whyX11},
	"forwardx11timeout":           {name: "ForwardX11Timeout", use: ignored, why: whyX11},
	"forwardx11trusted":           {name: "ForwardX11Trusted", use: ignored, why: whyX11},
	"gatewayports":                {name: "GatewayPorts", use: ignored, why: whyForward},
	"gssapiauthentication":        {name: "GSSAPIAuthentication", use: ignored, why: whyGSSAPI},
	"gssapiclientidentity":        {name: "GSSAPIClientIdentity", use: ignored, why: whyGSSAPI},
	"gssapidelegatecredentials":   {name: "GSSAPIDelegateCredentials", use: ignored, why: whyGSSAPI},
	"gssapikexalgorithms":         {name: "GSSAPIKexAlgorithms", use: ignored, why: whyGSSAPI},
	"gssapikeyexchange":           {name: "GSSAPIKeyExchange", use: ignored, why: whyGSSAPI},
	"gssapirenewalforcesrekey":    {name: "GSSAPIRenewalForcesRekey", use: ignored, why: whyGSSAPI},
	"gssapiserveridentity":        {name: "GSSAPIServerIdentity", use: ignored, why: whyGSSAPI},
	"gssapitrustdns":              {name: "GSSAPITrustDns", use: ignored, why: whyGSSAPI},
	"hostbasedacceptedalgorithms": {name: "HostbasedAcceptedAlgorithms", use: ignored, why: whyHostbased},
	"hostbasedauthentication":     {name: "HostbasedAuthentication", use: ignored, why: whyHostbased},
	"hostbasedkeytypes":           {name: "HostbasedKeyTypes", use: ignored, why: whyHostbased},
	"ignoreunknown":               {name: "IgnoreUnknown", use: ignored, why: "every OpenSSH option has a rule in the built-in client"},
	"ipqos":                       {name: "IPQoS", use: ignored, why: "the system's default IP type of service is used"},
	"kbdinteractivedevices":       {name: "KbdInteractiveDevices", use: ignored, why: "keyboard-interactive only answers with the --env-password password"},
	"localcommand":                {name: "LocalCommand", use: ignored, why: whyLocalCmd},
	"localforward":                {name: "LocalForward", use: ignored, why: whyForward},
	"loglevel":                    {name: "LogLevel", use: ignored, why: whyLog},
	"logverbose":                  {name: "LogVerbose", use: ignored, why: whyLog},
	"nohostauthenticationforlocalhost": {name: "NoHostAuthenticationForLocalhost", use: ignored,
		why: "the host key of localhost is checked like any other"},
	"numberofpasswordprompts": {name: "NumberOfPasswordPrompts", use: ignored, why: "login passwords are never prompted for (use --env-password)"},
	"obscurekeystroketiming":  {name: "ObscureKeystrokeTiming", use: ignored, why: "no interactive typing is sent"},
	"permitlocalcommand":      {name: "PermitLocalCommand", use: ignored, why: whyLocalCmd},
	"permitremoteopen":        {name: "PermitRemoteOpen", use: ignored, why: whyForward},
	"pkcs11provider":          {name: "PKCS11Provider", use: ignored, why: "token keys are not loaded directly; add them to ssh-agent (ssh-add -s PROVIDER)"},
	"proxyusefdpass":          {name: "ProxyUseFdpass", use: ignored, why: "it only matters with ProxyCommand, which is not run"},
	"rekeylimit":              {name: "RekeyLimit", use: ignored, why: "golang.org/x/crypto/ssh re-keys after its own cipher-specific amount of data"},
	"remotecommand":           {name: "RemoteCommand", use: ignored, why: "the installer runs its own commands"},
	"remoteforward":           {name: "RemoteForward", use: ignored, why: whyForward},
	"requesttty":              {name: "RequestTTY", use: ignored, why: whySession},
	"securitykeyprovider":     {name: "SecurityKeyProvider", use: ignored, why: "FIDO keys are used through ssh-agent only (ssh-add KEY)"},
	"sendenv":                 {name: "SendEnv", use: ignored, why: "no environment variables are sent; remote commands get what they need on their command line"},
	"sessiontype":             {name: "SessionType", use: ignored, why: whySession},
	"setenv":                  {name: "SetEnv", use: ignored, why: "no environment variables are sent; remote commands get what they need on their command line"},
	"stdinnull":               {name: "StdinNull", use: ignored, why: whySession},
	"streamlocalbindmask":     {name: "StreamLocalBindMask", use: ignored, why: whyForward},
	"streamlocalbindunlink":   {name: "StreamLocalBindUnlink", use: ignored, why: whyForward},
	"syslogfacility":          {name: "SyslogFacility", use: ignored, why: whyLog},
	"tag":                     {name: "Tag", use: ignored, why: "it only feeds ssh_config Match tagged, which the ssh_config reader does not evaluate"},
	"tcpkeepalive":            {name: "TCPKeepAlive", use: ignored, why: "TCP keepalives are always on, and ServerAliveInterval detects a dead target"},
	"tunnel":                  {name: "Tunnel", use: ignored, why: whyForward},
	"tunneldevice":            {name: "TunnelDevice", use: ignored, why: whyForward},
	"updatehostkeys":          {name: "UpdateHostKeys", use: ignored, why: "further host keys the server announces are not recorded"},
	"usekeychain":             {name: "UseKeychain", use: ignored, why: "the macOS keychain is not read; load the key into ssh-agent"},
	"verifyhostkeydns":        {name: "VerifyHostKeyDNS", use: ignored, why: "SSHFP records are not consulted; the key must be in known_hosts or accepted (StrictHostKeyChecking)"},
	"visualhostkey":           {name: "VisualHostKey", use: ignored, why: "no ASCII-art fingerprints are drawn"},
	"warnweakcrypto":          {name: "WarnWeakCrypto", use: ignored, why: "no warning is printed; restrict algorithms with KexAlgorithms, Ciphers, MACs and HostKeyAlgorithms"},
	"xauthlocation":           {name: "XAuthLocation", use: ignored, why: whyX11},
	"cipher":                  {name: "Cipher", use: ignored, why: whyObsolete + "; Ciphers is honoured"},
	"compressionlevel":        {name: "CompressionLevel", use: ignored, why: whyObsolete},
	"protocol":                {name: "Protocol", use: ignored, why: whyObsolete + " (only protocol 2 exists)"},
	"rhostsrsaauthentication": {name: "RhostsRSAAuthentication", use: ignored, why: whyObsolete},
	"rsaauthentication":       {name: "RSAAuthentication", use: ignored, why: whyObsolete},
	"useprivilegedport":       {name: "UsePrivilegedPort", use: ignored, why: whyObsolete},
	"useroaming":              {name: "UseRoaming", use: ignored, why: whyObsolete},

	// Refused: ignoring them would change security or where the connection
	// goes behind the user's back.
	"bindaddress":       {name: "BindAddress", use: refused, jump: true, why: "the built-in client cannot choose its source address: it connects from the one the system's routing picks; drop the option or reach the target through ProxyJump"},
	"bindinterface":     {name: "BindInterface", use: refused, jump: true, why: "the built-in client cannot bind to an interface: it connects through the one the system's routing picks; drop the option or reach the target through ProxyJump"},
	"proxycommand":      {name: "ProxyCommand", use: refused, jump: true, why: whyCommands + "; use ProxyJump instead (--ssh-option ProxyJump=user@jumphost)"},
	"knownhostscommand": {name: "KnownHostsCommand", use: refused, jump: true, why: whyCommands + "; write the host keys into a file and pass --ssh-option UserKnownHostsFile=FILE"},
	"revokedhostkeys":   {name: "RevokedHostKeys", use: refused, jump: true, why: "revocation lists are not read, and ignoring one could accept a revoked key; mark the key @revoked in known_hosts instead"},
	"host":              {name: "Host", use: refused, why: whyStructure},
	"match":             {name: "Match", use: refused, why: whyStructure},
	"include":           {name: "Include", use: refused, why: whyStructure},
}

// canonical returns the lower-case key under which an option's value is
// kept (an old spelling maps to the current one) and its rule.
func canonical(key string) (string, sshOption, bool) {
	lk := strings.ToLower(key)
	opt, ok := sshOptions[lk]
	if ok && opt.alias != "" {
		return opt.alias, sshOptions[opt.alias], true
	}
	return lk, opt, ok
}

// SupportedSSHOptions lists the options the built-in client honours, for
// help texts.
func SupportedSSHOptions() []string { return optionNames(honoured) }

// RefusedSSHOptions lists the OpenSSH options that are an error, for help
// texts.
func RefusedSSHOptions() []string { return optionNames(refused) }

func optionNames(use optionUse) []string {
	var ks []string
	for _, o := range sshOptions {
		if o.use == use {
			ks = append(ks, o.name)
		}
	}
	slices.Sort(ks)
	return ks
}

// parseSSHOptions turns --ssh-option KEY=VALUE (or "KEY VALUE") pairs into
// a map of lower-case keys to values (IdentityFile accumulates) and one
// warning per ignored option. A refused or unknown option is an error.
func parseSSHOptions(opts []string) (map[string][]string, []string, error) {
	m := map[string][]string{}
	var warnings []string
	warned := map[string]bool{}
	for _, kv := range opts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			k, v, ok = strings.Cut(strings.TrimSpace(kv), " ")
		}
		k, v = strings.TrimSpace(k), unquote(strings.TrimSpace(v))
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("--ssh-option %q: want KEY=VALUE (example: --ssh-option StrictHostKeyChecking=accept-new)", kv)
		}
		lk, opt, known := canonical(k)
		switch {
		case !known:
			return nil, nil, fmt.Errorf("--ssh-option %q: %s is not an OpenSSH client option (see ssh_config(5); the built-in client honours %s)",
				kv, k, strings.Join(SupportedSSHOptions(), ", "))
		case opt.use == refused && !strings.EqualFold(v, "none"):
			return nil, nil, fmt.Errorf("--ssh-option %q: %s is not supported: %s", kv, opt.name, opt.why)
		case opt.use == refused:
			// "none" turns the feature off, also over ssh_config.
			m[lk] = []string{"none"}
			continue
		case opt.use == ignored:
			if !warned[lk] {
				warned[lk] = true
				warnings = append(warnings, fmt.Sprintf("--ssh-option %s has no effect: %s", opt.name, opt.why))
			}
			continue
		}
		if lk == "identityfile" {
			m[lk] = append(m[lk], v)
		} else {
			m[lk] = []string{v}
		}
	}
	return m, warnings, nil
}

// CheckSSHOptions checks --ssh-option values before anything connects: an
// unknown, refused or malformed option (Port=abc, AddressFamily=ipx) is an
// error, and each ignored option yields one warning for the caller to print.
// Dial itself drops ignored options silently, so that a run that connects
// several times warns once. host only names the target in messages.
func CheckSSHOptions(opts []string, host string) (warnings []string, err error) {
	_, warnings, err = parseSSHOptions(opts)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = "TARGET"
	}
	// Resolving without ssh_config files checks every value with the same
	// code that uses it; ssh_config itself is read when connecting.
	o := Options{SSHOptions: opts, UserConfigFile: "none", SystemConfigFile: "none", Home: "/nonexistent", LocalUser: "root"}
	if _, err := Resolve(Target{Host: host}, o); err != nil {
		return nil, fmt.Errorf("--ssh-option: %w", err)
	}
	return warnings, nil
}

// algorithmList applies an OpenSSH algorithm list to x/crypto's defaults:
// "a,b" replaces them, "+a" appends, "-a" removes and "^a" puts names first;
// names may be patterns with * and ?. Only names in all survive, in the
// order OpenSSH would use; nil means "the defaults". Names x/crypto does not
// implement are dropped, as OpenSSH drops the ones it was built without, so
// that hardened configurations listing newer algorithms keep working; a list
// that leaves nothing is an error.
func algorithmList(key, spec string, defaults, all []string) ([]string, error) {
	if spec == "" {
		return nil, nil
	}
	matching := func(patterns string, from []string) []string {
		var out []string
		for _, p := range strings.Split(patterns, ",") {
			for _, name := range from {
				if ok, _ := path.Match(strings.TrimSpace(p), name); ok && !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
		return out
	}
	var out []string
	switch spec[0] {
	case '+':
		out = slices.Clone(defaults)
		for _, n := range matching(spec[1:], all) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	case '-':
		drop := matching(spec[1:], all)
		for _, n := range defaults {
			if !slices.Contains(drop, n) {
				out = append(out, n)
			}
		}
	case '^':
		out = matching(spec[1:], all)
		for _, n := range defaults {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	default:
		out = matching(spec, all)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %q leaves no algorithm the built-in client implements (it has: %s)", key, spec, strings.Join(all, ","))
	}
	return out, nil
}

// algorithmKinds are the list options and, for each, x/crypto's default
// (secure) and complete lists.
var algorithmKinds = map[string]func(ssh.Algorithms) []string{
	"KexAlgorithms":     func(a ssh.Algorithms) []string { return a.KeyExchanges },
	"Ciphers":           func(a ssh.Algorithms) []string { return a.Ciphers },
	"MACs":              func(a ssh.Algorithms) []string { return a.MACs },
	"HostKeyAlgorithms": func(a ssh.Algorithms) []string { return a.HostKeys },
	// User keys may be certificates too; x/crypto lists those with the host
	// key algorithms only.
	"PubkeyAcceptedAlgorithms": func(a ssh.Algorithms) []string {
		out := slices.Clone(a.PublicKeyAuths)
		for _, h := range a.HostKeys {
			if strings.Contains(h, "-cert-") {
				out = append(out, h)
			}
		}
		if slices.Contains(a.PublicKeyAuths, ssh.KeyAlgoSKED25519) {
			out = append(out, ssh.CertAlgoSKED25519v01, ssh.CertAlgoSKECDSA256v01)
		}
		return out
	},
	// A CA signs with a plain key's signature algorithm.
	"CASignatureAlgorithms": func(a ssh.Algorithms) []string { return a.PublicKeyAuths },
}

// algorithms resolves one of the algorithmKinds options.
func algorithms(key, spec string) ([]string, error) {
	pick := algorithmKinds[key]
	defaults := pick(ssh.SupportedAlgorithms())
	all := append(slices.Clone(defaults), pick(ssh.InsecureAlgorithms())...)
	return algorithmList(key, spec, defaults, all)
}

// authMethodNames are the methods the client can offer, in the default
// order (PreferredAuthentications reorders and narrows them).
var authMethodNames = []string{"publickey", "password", "keyboard-interactive"}

// authOrder is the order in which methods are offered.
func (c *Config) authOrder() []string {
	if c.PreferredAuthentications != nil {
		return c.PreferredAuthentications
	}
	return authMethodNames
}

// offers reports whether an authentication method may be offered to this
// host: PubkeyAuthentication, PasswordAuthentication and
// KbdInteractiveAuthentication turn one off, PreferredAuthentications names
// the ones allowed.
func (c *Config) offers(method string) bool {
	on := map[string]bool{"publickey": c.PubkeyAuthentication, "password": c.PasswordAuthentication, "keyboard-interactive": c.KbdInteractive}
	return on[method] && slices.Contains(c.authOrder(), method)
}

// usableSigner applies RequiredRSASize and PubkeyAcceptedAlgorithms to a
// key about to be offered: it returns the key (an RSA key narrowed to the
// accepted signature algorithms), or nil and why it is not offered.
func usableSigner(c *Config, s ssh.Signer, source string) (ssh.Signer, string) {
	k := s.PublicKey()
	if bits := rsaBits(k); bits > 0 && bits < c.RequiredRSASize {
		return nil, fmt.Sprintf("%s (%s) not offered: %d-bit RSA, below RequiredRSASize %d", source, keyString(k), bits, c.RequiredRSASize)
	}
	if c.PubkeyAcceptedAlgorithms == nil {
		return s, ""
	}
	r, ok := restrictSigner(s, c.PubkeyAcceptedAlgorithms)
	if !ok {
		return nil, fmt.Sprintf("%s (%s) not offered: PubkeyAcceptedAlgorithms does not list %s", source, keyString(k), k.Type())
	}
	return r, ""
}

// restrictSigner applies PubkeyAcceptedAlgorithms to one key: false when
// none of the algorithms its type can sign with is accepted; an RSA key is
// narrowed to the accepted SHA-2/SHA-1 signatures.
func restrictSigner(s ssh.Signer, accepted []string) (ssh.Signer, bool) {
	// Each public key algorithm an RSA key may be offered as, with the
	// signature algorithm behind it; other keys have exactly one.
	var names [][2]string
	switch format := s.PublicKey().Type(); format {
	case ssh.KeyAlgoRSA:
		names = [][2]string{{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA256}, {ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA512}, {ssh.KeyAlgoRSA, ssh.KeyAlgoRSA}}
	case ssh.CertAlgoRSAv01:
		names = [][2]string{{ssh.CertAlgoRSASHA256v01, ssh.KeyAlgoRSASHA256}, {ssh.CertAlgoRSASHA512v01, ssh.KeyAlgoRSASHA512}, {ssh.CertAlgoRSAv01, ssh.KeyAlgoRSA}}
	default:
		return s, slices.Contains(accepted, format)
	}
	var sigs []string
	for _, n := range names {
		if slices.Contains(accepted, n[0]) {
			sigs = append(sigs, n[1])
		}
	}
	if len(sigs) == 0 {
		return nil, false
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return s, true
	}
	ms, err := ssh.NewSignerWithAlgorithms(as, sigs)
	if err != nil {
		return nil, false
	}
	return ms, true
}

// rsaBits is the modulus size of an RSA key (or of the key inside an RSA
// certificate), 0 for other keys.
func rsaBits(k ssh.PublicKey) int {
	if c, ok := k.(*ssh.Certificate); ok {
		k = c.Key
	}
	if ck, ok := k.(ssh.CryptoPublicKey); ok {
		if r, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok {
			return r.N.BitLen()
		}
	}
	return 0
}
