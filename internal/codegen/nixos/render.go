package nixos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

// JSON is Config as indented JSON with sorted keys and a trailing newline: the output of
// `disko-compile nixos-config`, stable so that it can be diffed and kept in golden files.
func JSON(d *config.Devices) ([]byte, error) {
	cfg, err := Config(d)
	if err != nil {
		return nil, err
	}
	if err := checkStrings("", cfg); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("encoding the NixOS configuration as JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// Nix is Config as a Nix expression that evaluates to the same value as JSON: a file the
// user can list in `imports` (a plain attribute set is a NixOS module).
func Nix(d *config.Devices) ([]byte, error) {
	cfg, err := Config(d)
	if err != nil {
		return nil, err
	}
	if err := checkStrings("", cfg); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.\n")
	b.WriteString("# Import it as a module: imports = [ ./this-file.nix ];\n")
	if err := writeNix(&b, cfg, 0); err != nil {
		return nil, err
	}
	b.WriteString("\n")
	return []byte(b.String()), nil
}

// writeNix writes v at the given indentation depth (the opening token is not indented).
func writeNix(b *strings.Builder, v any, depth int) error {
	pad := strings.Repeat("  ", depth)
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case string:
		b.WriteString(nixlit.String(v))
	case int64:
		// A negative literal must be parenthesised inside a list: [ -1 ] is a syntax error.
		if v < 0 {
			fmt.Fprintf(b, "(%d)", v)
		} else {
			b.WriteString(strconv.FormatInt(v, 10))
		}
	case float64:
		s, err := nixFloat(v)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case map[string]any:
		if len(v) == 0 {
			b.WriteString("{ }")
			return nil
		}
		b.WriteString("{\n")
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b.WriteString(pad + "  " + nixlit.AttrName(k) + " = ")
			if err := writeNix(b, v[k], depth+1); err != nil {
				return err
			}
			b.WriteString(";\n")
		}
		b.WriteString(pad + "}")
	case []any:
		if len(v) == 0 {
			b.WriteString("[ ]")
			return nil
		}
		b.WriteString("[\n")
		for _, e := range v {
			b.WriteString(pad + "  ")
			if err := writeNix(b, e, depth+1); err != nil {
				return err
			}
			b.WriteString("\n")
		}
		b.WriteString(pad + "]")
	default:
		return fmt.Errorf("cannot write a %T as Nix", v)
	}
	return nil
}

// nixFloat writes a float as a Nix float literal, which needs a digit before the point and
// a point before any exponent ("1e+21" is not Nix; "1.0e+21" is).
func nixFloat(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%v has no Nix (or JSON) literal", f)
	}
	s := strconv.FormatFloat(math.Abs(f), 'g', -1, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if hasExp {
		mant += "e" + exp
	}
	if f < 0 || (f == 0 && math.Signbit(f)) {
		return "(-" + mant + ")", nil
	}
	return mant, nil
}

// checkStrings refuses what neither output can carry faithfully: a NUL byte (Nix strings
// are C strings) and invalid UTF-8 (JSON would replace it silently).
func checkStrings(path string, v any) error {
	check := func(s string) error {
		if strings.ContainsRune(s, 0) {
			return fmt.Errorf("NixOS configuration %s: %q contains a NUL byte, which Nix strings cannot hold", path, s)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("NixOS configuration %s: %q is not valid UTF-8", path, s)
		}
		return nil
	}
	switch v := v.(type) {
	case string:
		return check(v)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := path + "." + nixlit.AttrName(k)
			if err := check(k); err != nil {
				return err
			}
			if err := checkStrings(p, v[k]); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := checkStrings(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// plain converts a LUKS settings value (decoded JSON, or built by hand) to the value forms
// Config promises. Whole numbers become int64 even when written 4096.0, because the NixOS
// options that take numbers (keyFileSize, keyFileOffset, ...) are ints and JSON cannot
// tell the two apart anyway.
func plain(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string, int64:
		return v, nil
	case int:
		return int64(v), nil
	case float64:
		return number(v), nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("%q is not a number Nix can hold: %w", v.String(), err)
		}
		return number(f), nil
	case []string:
		return list(v), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			p, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			p, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[k] = p
		}
		return out, nil
	default:
		return nil, fmt.Errorf("a %T cannot be written to the NixOS configuration", v)
	}
}

// number is f as an int64 when it is a whole number that a float holds exactly.
func number(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f)
	}
	return f
}

// Expr writes a decoded JSON value (maps, lists, strings, numbers, booleans, null) as a Nix
// expression, with the same quoting as the NixOS configuration: `disko-compile import`
// writes the layouts it reads from disks with it.
func Expr(v any) (string, error) {
	p, err := plain(v)
	if err != nil {
		return "", err
	}
	if err := checkStrings("", p); err != nil {
		return "", err
	}
	var b strings.Builder
	if err := writeNix(&b, p, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}
