package cliargs

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

// flags is a small flag set with every kind Normalize tells apart: valued flags (with an
// alias), a boolean switch, and pair flags of both forms.
func flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "flake", Aliases: []string{"f"}},
		&cli.StringFlag{Name: "extra"},
		&cli.BoolFlag{Name: "debug", Aliases: []string{"d"}},
		&cli.StringSliceFlag{Name: "disk"},
		&cli.StringSliceFlag{Name: "chown"},
	}
}

var pairs = map[string]PairForm{"disk": PairOrAssign, "chown": Pair}

func TestNormalize(t *testing.T) {
	separate := Spec{Flags: flags(), Pairs: pairs, Sep: "\x00", Separate: true}
	inPlace := Spec{Flags: flags(), Pairs: pairs, Sep: "="}
	for _, tc := range []struct {
		name string
		spec Spec
		in   []string
		want []string
	}{
		{"nothing", separate, nil, nil},
		{"program name only", separate, []string{}, []string{}},
		{"flags after the argument move before it", separate, []string{"host", "--flake", ".#x", "-d"}, []string{"--flake", ".#x", "-d", "--", "host"}},
		{"without Separate no -- is added", inPlace, []string{"host", "--flake", ".#x"}, []string{"--flake", ".#x", "host"}},
		{"a value may start with -", separate, []string{"--extra", "--no-sync", "h"}, []string{"--extra", "--no-sync", "--", "h"}},
		{"an inline value stays one word", separate, []string{"h", "--flake=.#x"}, []string{"--flake=.#x", "--", "h"}},
		{"an alias takes a value too", separate, []string{"h", "-f", ".#x"}, []string{"-f", ".#x", "--", "h"}},
		{"a boolean takes no value", separate, []string{"-d", "h"}, []string{"-d", "--", "h"}},
		{"an unknown flag takes no value", separate, []string{"--unknown", "h"}, []string{"--unknown", "--", "h"}},
		{"an unknown flag is not an argument", separate, []string{"--root@h"}, []string{"--root@h"}},
		{"a flag at the end has no value", separate, []string{"h", "--flake"}, []string{"--flake", "--", "h"}},
		{"- is an argument", separate, []string{"-", "-d"}, []string{"-d", "--", "-"}},
		{"pair joined with Sep", separate, []string{"--chown", "/home", "1:1", "h"}, []string{"--chown", "/home\x001:1", "--", "h"}},
		{"pair keeps = in its first word", separate, []string{"--chown", "/a=b", "1:1", "h"}, []string{"--chown", "/a=b\x001:1", "--", "h"}},
		{"pair-or-assign splits one word at =", separate, []string{"--disk", "main=/dev/x", "h"}, []string{"--disk", "main\x00/dev/x", "--", "h"}},
		{"pair-or-assign splits at the first =", inPlace, []string{"--disk", "a=b=c", "h"}, []string{"--disk", "a=b=c", "h"}},
		{"pair-or-assign takes two words", inPlace, []string{"h", "--disk", "main", "/dev/x"}, []string{"--disk", "main=/dev/x", "h"}},
		{"pair with one word left", separate, []string{"h", "--chown", "/home"}, []string{"--chown", "/home", "--", "h"}},
		{"pair with nothing left", separate, []string{"h", "--disk"}, []string{"--disk", "--", "h"}},
		{"pair written inline is left alone", separate, []string{"--disk=a", "h"}, []string{"--disk=a", "--", "h"}},
		{"nothing after -- is a flag (Separate)", separate, []string{"--flake=.#x", "--", "-weird", "--debug"}, []string{"--flake=.#x", "--", "-weird", "--debug"}},
		{"-- joins the other arguments (Separate)", separate, []string{"a", "-d", "--", "b"}, []string{"-d", "--", "a", "b"}},
		{"a lone -- is dropped (Separate)", separate, []string{"-d", "--"}, []string{"-d"}},
		{"-- stays in place (in place)", inPlace, []string{"a", "-d", "--", "-b"}, []string{"-d", "a", "--", "-b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in != nil {
				in = append([]string{"prog"}, in...)
			}
			got := Normalize(tc.spec, in)
			want := tc.want
			if tc.in != nil {
				want = append([]string{"prog"}, tc.want...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

// TestNormalizeCommands checks that the words after a command are read with the
// command's flags, and the words before it with the application's.
func TestNormalizeCommands(t *testing.T) {
	spec := Spec{
		Flags: flags(),
		Commands: []*cli.Command{
			{Name: "scripts", Aliases: []string{"s"}, Flags: []cli.Flag{&cli.StringFlag{Name: "out"}, &cli.StringSliceFlag{Name: "disk"}}},
			{Name: "schema"},
		},
		Pairs: pairs,
		Sep:   "=",
	}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"command flags after the argument", []string{"scripts", "l.nix", "--out", "o", "--disk", "main", "/dev/x"}, []string{"scripts", "--out", "o", "--disk", "main=/dev/x", "l.nix"}},
		{"app flags before the command", []string{"--flake", "scripts", "schema", "x"}, []string{"--flake", "scripts", "schema", "x"}},
		{"app pair before the command", []string{"--disk", "a", "b", "scripts"}, []string{"--disk", "a=b", "scripts"}},
		{"an alias is a command", []string{"s", "l.nix", "--out", "o"}, []string{"s", "--out", "o", "l.nix"}},
		{"an app flag is unknown to the command", []string{"schema", "x", "--flake", "y"}, []string{"schema", "--flake", "x", "y"}},
		{"no command: the app's flags", []string{"l.nix", "--flake", "y"}, []string{"--flake", "y", "l.nix"}},
		{"the first argument decides", []string{"l.nix", "scripts", "--flake", "y"}, []string{"--flake", "y", "l.nix", "scripts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Normalize(spec, append([]string{"prog"}, tc.in...))[1:]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestNormalizeParses runs normalized command lines through urfave/cli and checks what it
// stored, so that the shape Normalize writes is the one urfave/cli reads.
func TestNormalizeParses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // --extra, --debug, each --disk, then the arguments
	}{
		{"flags after the argument", []string{"host", "--extra", "--no-sync", "--disk", "a", "b,c", "-d"}, []string{"--no-sync", "true", "a\x00b,c", "host"}},
		{"an argument that looks like a flag", []string{"--disk", "a=b", "--", "-weird-host"}, []string{"", "false", "a\x00b", "-weird-host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			app := &cli.App{
				Flags:                     flags(),
				DisableSliceFlagSeparator: true,
				Action: func(c *cli.Context) error {
					got = append([]string{c.String("extra"), fmt.Sprint(c.Bool("debug"))}, c.StringSlice("disk")...)
					got = append(got, c.Args().Slice()...)
					return nil
				},
			}
			spec := Spec{Flags: app.Flags, Pairs: pairs, Sep: "\x00", Separate: true}
			if err := app.Run(Normalize(spec, append([]string{"prog"}, tc.in...))); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parsed %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUsageError(t *testing.T) {
	base := errors.New("flag provided but not defined: -x")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"usage error", UsageError{Err: base}, true},
		{"wrapped", fmt.Errorf("parsing: %w", UsageError{Err: base}), true},
		{"from urfave/cli", OnUsageError(nil, base, false), true},
		{"other error", base, false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsUsageError(tc.err); got != tc.want {
				t.Errorf("IsUsageError(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if u := (UsageError{Err: base}); u.Error() != base.Error() || !errors.Is(u, base) {
		t.Errorf("UsageError hides its error: %q", u.Error())
	}
}
