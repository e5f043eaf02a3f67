package docs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

// Examples are kept as JSON (so that tests check them against the schema) and shown as the
// Nix a user writes. The JSON is read with its key order kept: an example reads best in
// the order it was written.

type jsonValue struct {
	kind  byte // 's' string, 'n' number, 'b' boolean, 'z' null, 'a' list, 'o' attribute set
	text  string
	items []jsonValue // 'a', and the values of 'o'
	keys  []string    // 'o'
}

func parseOrdered(data string) (jsonValue, error) {
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec)
	if err != nil {
		return v, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

func readValue(dec *json.Decoder) (jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return jsonValue{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		v := jsonValue{kind: 'a'}
		if t == '{' {
			v.kind = 'o'
		}
		for dec.More() {
			if v.kind == 'o' {
				k, err := dec.Token()
				if err != nil {
					return v, err
				}
				v.keys = append(v.keys, k.(string))
			}
			item, err := readValue(dec)
			if err != nil {
				return v, err
			}
			v.items = append(v.items, item)
		}
		_, err := dec.Token() // the closing delimiter
		return v, err
	case string:
		return jsonValue{kind: 's', text: t}, nil
	case json.Number:
		return jsonValue{kind: 'n', text: t.String()}, nil
	case bool:
		return jsonValue{kind: 'b', text: fmt.Sprint(t)}, nil
	case nil:
		return jsonValue{kind: 'z', text: "null"}, nil
	}
	return jsonValue{}, fmt.Errorf("unexpected JSON token %v", tok)
}

// nixAssignment shows value (JSON) as `path = value;`; a path ending in [] shows the value
// as the only element of a list.
func nixAssignment(path, value string) (string, error) {
	v, err := parseOrdered(value)
	if err != nil {
		return "", err
	}
	if p, ok := strings.CutSuffix(path, "[]"); ok {
		return p + " = [\n  " + nixValue(v, "  ") + "\n];\n", nil
	}
	return path + " = " + nixValue(v, "") + ";\n", nil
}

func nixValue(v jsonValue, indent string) string {
	switch v.kind {
	case 's':
		return nixlit.String(v.text)
	case 'o':
		if len(v.keys) == 0 {
			return "{ }"
		}
		var b bytes.Buffer
		b.WriteString("{\n")
		for i, k := range v.keys {
			name, value := nixlit.AttrName(k), v.items[i]
			// A set with one attribute reads best as a path: options.ashift = "12";
			if value.kind == 'o' && len(value.keys) == 1 {
				name, value = name+"."+nixlit.AttrName(value.keys[0]), value.items[0]
			}
			b.WriteString(indent + "  " + name + " = " + nixValue(value, indent+"  ") + ";\n")
		}
		b.WriteString(indent + "}")
		return b.String()
	case 'a':
		if len(v.items) == 0 {
			return "[ ]"
		}
		if !slices.ContainsFunc(v.items, func(x jsonValue) bool { return x.kind == 'o' || x.kind == 'a' }) {
			parts := make([]string, len(v.items))
			for i, x := range v.items {
				parts[i] = nixValue(x, indent)
			}
			return "[ " + strings.Join(parts, " ") + " ]"
		}
		var b bytes.Buffer
		b.WriteString("[\n")
		for _, x := range v.items {
			b.WriteString(indent + "  " + nixValue(x, indent+"  ") + "\n")
		}
		b.WriteString(indent + "]")
		return b.String()
	}
	return v.text
}
