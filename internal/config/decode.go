package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The decoder walks the JSON tree and the Go types side by side, by reflection, instead of
// using encoding/json directly: encoding/json stops at the first error, reports Go types
// rather than option paths, cannot suggest a key for a typo, and cannot tell an absent key
// (which gets its default) from a zero value. This one reports every problem with the path
// the user wrote and keeps going.

// decodeDevices decodes the JSON of disko.devices into a model, applying the defaults
// declared in struct tags to absent options.
func decodeDevices(data []byte) (*Devices, Problems) {
	var probs Problems
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		probs.add(rootPath, "is not valid JSON: %v", err)
		return nil, probs
	}
	if dec.More() {
		probs.add(rootPath, "has trailing data after the JSON value")
		return nil, probs
	}
	d := &Devices{}
	decodeValue(&probs, rootPath, raw, reflect.ValueOf(d).Elem(), field{})
	return d, probs
}

// decodeValue decodes raw into v; f is the struct field v belongs to (zero for map and
// list elements), whose tags may change how raw is read.
func decodeValue(probs *Problems, path Path, raw any, v reflect.Value, f field) {
	if raw == nil {
		v.SetZero()
		return
	}
	if v.Type() == reflect.TypeFor[ZpoolMode]() {
		decodeZpoolMode(probs, path, raw, v.Addr().Interface().(*ZpoolMode))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		decodeValue(probs, path, raw, elem.Elem(), f)
		v.Set(elem)
	case reflect.Interface:
		if v.Type() == reflect.TypeFor[any]() {
			v.Set(reflect.ValueOf(raw))
			return
		}
		decodeNode(probs, path, raw, v)
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			probs.add(path, "must be an attribute set, not %s", describe(raw))
			return
		}
		decodeStruct(probs, path, obj, v)
	case reflect.Map:
		obj, ok := raw.(map[string]any)
		if !ok {
			probs.add(path, "must be an attribute set, not %s", describe(raw))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(obj))
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			if key == "" {
				probs.add(path, "has an entry with an empty name")
				continue
			}
			if obj[key] == nil && !nullable(v.Type().Elem()) {
				probs.add(path.Attr(key), "must not be null (remove the entry instead)")
				continue
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			decodeValue(probs, path.Attr(key), obj[key], elem, field{})
			m.SetMapIndex(reflect.ValueOf(key), elem)
		}
		v.Set(m)
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			if _, isObj := raw.(map[string]any); isObj && f.oneOrMany {
				list = []any{raw}
			} else {
				probs.add(path, "must be a list, not %s", describe(raw))
				return
			}
		}
		s := reflect.MakeSlice(v.Type(), len(list), len(list))
		for i, item := range list {
			if item == nil && !nullable(v.Type().Elem()) {
				// Keep an empty item in its place, so that later items keep their positions
				// (and paths); checks below this path are not reported again.
				probs.add(path.Index(i), "must not be null (remove the item instead)")
				if t := v.Type().Elem(); t.Kind() == reflect.Pointer {
					s.Index(i).Set(reflect.New(t.Elem()))
				}
				continue
			}
			decodeValue(probs, path.Index(i), item, s.Index(i), field{})
		}
		v.Set(s)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			probs.add(path, "must be a string, not %s", describe(raw))
			return
		}
		if !checkEnum(probs, path, s, f.enum) {
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			probs.add(path, "must be true or false, not %s", describe(raw))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		n, ok := raw.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			probs.add(path, "must be a whole number, not %s", describe(raw))
			return
		}
		if !checkEnum(probs, path, n.String(), f.enum) {
			return
		}
		v.SetInt(i)
	default:
		probs.add(path, "cannot be decoded into %s (a bug: please report it)", v.Type())
	}
}

// nullable reports whether null is a value of a map entry or list item of type t: only
// free-form values (LUKS settings) hold it. Elsewhere null would leave a nil node or an
// empty string that no later stage expects, so it is refused at its path.
func nullable(t reflect.Type) bool {
	return t == reflect.TypeFor[any]()
}

// decodeStruct decodes an attribute set into a struct: unknown keys are problems with a
// suggestion, absent keys get their tag default, required keys must be present.
func decodeStruct(probs *Problems, path Path, obj map[string]any, v reflect.Value) {
	fields := jsonFields(v.Type())
	var unknown []string
	for key := range obj {
		// disko's module output carries internal options such as _index.
		if !strings.HasPrefix(key, "_") && !slices.ContainsFunc(fields, func(f field) bool { return f.name == key }) {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		names := make([]string, 0, len(fields))
		for _, f := range fields {
			names = append(names, f.name)
		}
		for _, key := range unknown {
			if s := suggest(key, names); s != "" {
				probs.add(path.Attr(key), "unknown option (did you mean %q?)", s)
			} else {
				probs.add(path.Attr(key), "unknown option (known options here: %s)", strings.Join(names, ", "))
			}
		}
	}
	for _, f := range fields {
		fv := v.FieldByIndex(f.index)
		raw, present := obj[f.name]
		switch {
		case present && raw == nil && f.notNull:
			probs.add(path.Field(f.name), "must not be null (null would leave this entry without any effect: remove the entry instead)")
		case present && raw == nil && f.required:
			probs.add(path.Field(f.name), "is required and must not be null")
		case present && raw != nil:
			decodeValue(probs, path.Field(f.name), raw, fv, f)
		case f.required:
			probs.add(path.Field(f.name), "is required")
		default:
			// Absent, or null on an option that has a default: the default applies.
			setTagDefault(fv, f.defaults)
		}
	}
}

// decodeNode decodes a tagged-union slot: the `type` key picks the Go type, which must
// implement the slot's interface.
func decodeNode(probs *Problems, path Path, raw any, v reflect.Value) {
	obj, ok := raw.(map[string]any)
	if !ok {
		probs.add(path, "must be an attribute set with a type, not %s", describe(raw))
		return
	}
	allowed := AllowedTypes(v.Type())
	kind, ok := obj["type"].(string)
	if !ok {
		probs.add(path.Attr("type"), "is required here: one of %s", strings.Join(allowed, ", "))
		return
	}
	if !slices.Contains(allowed, kind) {
		if _, known := NodeTypes[kind]; known {
			probs.add(path.Attr("type"), "%q cannot be used here (%s); allowed here: %s", kind, slotReason(v.Type()), strings.Join(allowed, ", "))
			return
		}
		msg := fmt.Sprintf("%q is not a known type; allowed here: %s", kind, strings.Join(allowed, ", "))
		if s := suggest(kind, allowed); s != "" {
			msg = fmt.Sprintf("%q is not a known type (did you mean %q?)", kind, s)
		}
		probs.add(path.Attr("type"), "%s", msg)
		return
	}
	node := reflect.ValueOf(NodeTypes[kind]())
	decodeStruct(probs, path, obj, node.Elem())
	v.Set(node)
}

var allowedCache sync.Map

// AllowedTypes lists, sorted, the `type` values whose Go types implement slot.
func AllowedTypes(slot reflect.Type) []string {
	if cached, ok := allowedCache.Load(slot); ok {
		return cached.([]string)
	}
	var out []string
	for kind, mk := range NodeTypes {
		if reflect.TypeOf(mk()).Implements(slot) {
			out = append(out, kind)
		}
	}
	slices.Sort(out)
	allowedCache.Store(slot, out)
	return out
}

func slotReason(slot reflect.Type) string {
	switch slot {
	case reflect.TypeFor[PartitionNode]():
		return "a partition, logical volume or zvol cannot hold a partition table"
	case reflect.TypeFor[DatasetNode]():
		return "a zpool's datasets are zfs_fs or zfs_volume"
	default:
		return "not allowed in this slot"
	}
}

// decodeZpoolMode reads a mode string or {topology = ...}.
func decodeZpoolMode(probs *Problems, path Path, raw any, m *ZpoolMode) {
	switch r := raw.(type) {
	case string:
		mode, _ := reflect.TypeFor[ZpoolMode]().FieldByName("Mode")
		if checkEnum(probs, path, r, TagValues(mode, "enum")) {
			m.Mode = r
		}
	case map[string]any:
		var wrapper struct {
			Topology *Topology `json:"topology" jsonschema:"required"`
		}
		decodeStruct(probs, path, r, reflect.ValueOf(&wrapper).Elem())
		m.Topology = wrapper.Topology
	default:
		probs.add(path, "must be a mode string or {topology = ...}, not %s", describe(raw))
	}
}

// field describes one option of a struct, flattened through embedded structs (Hooks),
// with what the decoder reads from its tags (read once per type, not once per value).
type field struct {
	name      string
	index     []int
	field     reflect.StructField
	required  bool
	notNull   bool     // decode:"notNull"
	oneOrMany bool     // decode:"oneOrMany"
	enum      []string // the jsonschema tag's enum values
	defaults  []string // the jsonschema tag's default values
}

// fieldCache holds jsonFields per struct type: reflection over tags is the decoder's main
// cost otherwise.
var fieldCache sync.Map

// jsonFields lists the options of a struct type in declaration order.
func jsonFields(t reflect.Type) []field {
	if cached, ok := fieldCache.Load(t); ok {
		return cached.([]field)
	}
	out := collectFields(t)
	fieldCache.Store(t, out)
	return out
}

func collectFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			for _, inner := range collectFields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		// Each tag is looked up once: a lookup reads past the long descriptions.
		schema, decode := strings.Split(f.Tag.Get("jsonschema"), ","), f.Tag.Get("decode")
		out = append(out, field{name: name, index: []int{i}, field: f, required: slices.Contains(schema, "required"),
			notNull: decode == "notNull", oneOrMany: decode == "oneOrMany",
			enum: entryValues(schema, "enum"), defaults: entryValues(schema, "default")})
	}
	return out
}

// Options lists the option names of a model struct type, flattened through embedded
// structs, in declaration order. Docs and validation use it to walk the model.
func Options(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for _, f := range jsonFields(t) {
		out = append(out, f.field)
	}
	return out
}

// TagValues returns the values of key=value entries of a field's jsonschema tag, e.g. all
// enum values or all default list items.
func TagValues(f reflect.StructField, key string) []string {
	return entryValues(strings.Split(f.Tag.Get("jsonschema"), ","), key)
}

// entryValues returns the values of the key=value entries of a split jsonschema tag.
func entryValues(entries []string, key string) []string {
	var out []string
	for _, entry := range entries {
		if k, v, ok := strings.Cut(entry, "="); ok && k == key {
			out = append(out, v)
		}
	}
	return out
}

// checkEnum reports a value outside the field's declared enum.
func checkEnum(probs *Problems, path Path, value string, enum []string) bool {
	if len(enum) == 0 || slices.Contains(enum, value) {
		return true
	}
	shown := make([]string, len(enum))
	for i, e := range enum {
		shown[i] = strconv.Quote(e)
	}
	msg := fmt.Sprintf("%q is not one of %s", value, strings.Join(shown, ", "))
	if s := suggest(value, enum); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	probs.add(path, "%s", msg)
	return false
}

// setTagDefault gives an absent option the default declared in its jsonschema tag.
func setTagDefault(v reflect.Value, defaults []string) {
	if len(defaults) == 0 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(defaults[0])
	case reflect.Bool:
		v.SetBool(defaults[0] == "true")
	case reflect.Int:
		n, _ := strconv.Atoi(defaults[0])
		v.SetInt(int64(n))
	case reflect.Slice:
		v.Set(reflect.ValueOf(slices.Clone(defaults)))
	}
}

// describe names the JSON kind of a value for error messages.
func describe(raw any) string {
	switch r := raw.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", r)
	case bool:
		return fmt.Sprintf("the boolean %t", r)
	case json.Number:
		return "the number " + r.String()
	case []any:
		return "a list"
	case map[string]any:
		return "an attribute set"
	default:
		return fmt.Sprintf("%T", raw)
	}
}
