package docs

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// The reference and the schema are both built from one walk over the Go types of
// internal/config: every option name, type, accepted value, default and description below
// comes from a struct field and its tags, every "may contain" from a field's Go type and
// every "may appear in" from inverting those. Only the prose that is not option data (what
// a type is for, the device paths it creates, the NixOS options it emits, an example)
// lives in this package, in prose.go.

// typeDoc is one struct type of the model: a typed node (disk, gpt, ...) or a part of one
// (a gpt partition, a logical volume, ...).
type typeDoc struct {
	t       reflect.Type
	kind    string // the `type` value of a typed node; "" for a part of another type
	node    bool   // may sit in a content slot, so `type` picks it and must be written
	title   string // section heading text (markup)
	anchor  string
	prose   *prose
	options []*optionDoc // without the hooks
	hooks   bool         // accepts the hooks of every typed node
	uses    []edge       // what it may contain
	usedBy  []edge       // where it may appear
}

// edge says that option `option` of `from` may hold a `to`; from is nil for disko.devices.
type edge struct {
	from   *typeDoc
	option string // the option path below from, as written in a layout: partitions.<name>
	to     *typeDoc
	slot   *slotDoc // the content slot the edge goes through, if any
}

// slotDoc is a tagged-union slot interface (DeviceNode, PartitionNode, DatasetNode).
type slotDoc struct {
	t       reflect.Type
	name    string // "device slot"
	anchor  string
	members []*typeDoc // sorted by `type` value
	usedBy  []edge     // the options that are this slot
}

// optionDoc is one option of a type, read from one struct field.
type optionDoc struct {
	name        string
	field       reflect.StructField
	desc        string
	enum        []string
	defaults    []string // the default= entries of the jsonschema tag
	defaultText string   // a computed default, in words
	required    bool
	nullable    bool // null means the same as leaving the option out
	// discriminator is the `type` of a typed node: its one value picks the Go type.
	discriminator bool
	val           *valueType
}

type valueKind int

const (
	vString valueKind = iota
	vBool
	vInt
	vAny    // any JSON value (luks settings)
	vList   // elem
	vAttrs  // elem, keyed by name
	vStruct // target
	vSlot   // slot: one of the slot's node types, picked by `type`
	vMode   // a mode string (modeEnum) or {topology = target}
)

// valueType is the shape of an option's value.
type valueType struct {
	kind      valueKind
	elem      *valueType
	target    *typeDoc
	slot      *slotDoc
	oneOrMany bool     // vList that also accepts a single element
	modeEnum  []string // vMode
	modeField reflect.StructField
}

// collection is a field of config.Devices: disko.devices.NAME.<name>.
type collection struct {
	name string
	desc string
	elem *typeDoc
}

// model is the whole walk.
type model struct {
	collections []collection
	types       []*typeDoc // in the reading order of prose.go
	byType      map[reflect.Type]*typeDoc
	slots       []*slotDoc
	hooks       []*optionDoc
	hookProse   *prose
}

var (
	devicesType = reflect.TypeFor[config.Devices]()
	hooksType   = reflect.TypeFor[config.Hooks]()
	modeType    = reflect.TypeFor[config.ZpoolMode]()
	anyType     = reflect.TypeFor[any]()
)

// buildModel walks the Go model from config.Devices. It fails when the model and the
// prose disagree (a type without prose, prose for a type that no longer exists), so that
// the docs cannot silently drop a type.
func buildModel() (*model, error) {
	m := &model{byType: map[reflect.Type]*typeDoc{}}
	for i := range proseTable {
		p := &proseTable[i]
		if p.t == hooksType {
			m.hookProse = p
			continue
		}
		if _, dup := m.byType[p.t]; dup {
			return nil, fmt.Errorf("docs: prose for %s is written twice", p.t)
		}
		td := &typeDoc{t: p.t, prose: p, title: p.title}
		if n, ok := reflect.New(p.t).Interface().(config.Node); ok {
			td.kind = n.Kind()
			_, td.node = config.NodeTypes[td.kind]
			td.title = code(td.kind)
		}
		td.anchor = slug(plainText(td.title))
		m.types = append(m.types, td)
		m.byType[p.t] = td
	}
	if m.hookProse == nil {
		return nil, fmt.Errorf("docs: no prose for the hooks (%s)", hooksType)
	}
	for _, f := range config.Options(hooksType) {
		o, err := m.option(nil, f)
		if err != nil {
			return nil, err
		}
		m.hooks = append(m.hooks, o)
	}
	reached := map[reflect.Type]bool{}
	for _, f := range config.Options(devicesType) {
		elem := f.Type.Elem()
		if elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		td, err := m.visit(elem, reached)
		if err != nil {
			return nil, fmt.Errorf("docs: disko.devices.%s: %w", jsonName(f), err)
		}
		c := collection{name: jsonName(f), desc: f.Tag.Get("jsonschema_description"), elem: td}
		m.collections = append(m.collections, c)
		td.usedBy = append(td.usedBy, edge{option: "disko.devices." + c.name + ".<name>", to: td})
	}
	for _, td := range m.types {
		if !reached[td.t] {
			return nil, fmt.Errorf("docs: prose.go describes %s, which no option of disko.devices reaches", td.t)
		}
	}
	for _, td := range m.types {
		for _, e := range td.uses {
			e.to.usedBy = append(e.to.usedBy, e)
			if e.slot != nil && !slices.ContainsFunc(e.slot.usedBy, func(x edge) bool { return x.from == e.from && x.option == e.option }) {
				e.slot.usedBy = append(e.slot.usedBy, e)
			}
		}
	}
	return m, nil
}

// visit documents struct type t and everything its options reach.
func (m *model) visit(t reflect.Type, reached map[reflect.Type]bool) (*typeDoc, error) {
	td, ok := m.byType[t]
	if !ok {
		return nil, fmt.Errorf("%s has no prose in internal/docs/prose.go (title, summary, example)", t)
	}
	if reached[t] {
		return td, nil
	}
	reached[t] = true
	hookNames := map[string]bool{}
	for _, f := range config.Options(hooksType) {
		hookNames[f.Name] = true
	}
	for _, f := range config.Options(t) {
		if hookNames[f.Name] && isEmbeddedHook(t, f) {
			td.hooks = true
			continue
		}
		o, err := m.option(td, f)
		if err != nil {
			return nil, err
		}
		td.options = append(td.options, o)
		for _, target := range o.val.targets() {
			if _, err := m.visit(target.t, reached); err != nil {
				return nil, err
			}
		}
		td.uses = append(td.uses, o.val.edges(td, o.name)...)
	}
	return td, nil
}

// isEmbeddedHook tells a hook option (from the embedded config.Hooks) from a field of t
// that happens to share its Go name.
func isEmbeddedHook(t reflect.Type, f reflect.StructField) bool {
	own, ok := t.FieldByName(f.Name)
	return ok && len(own.Index) > 1 && t.FieldByIndex(own.Index[:1]).Type == hooksType
}

// option reads one struct field.
func (m *model) option(owner *typeDoc, f reflect.StructField) (*optionDoc, error) {
	o := &optionDoc{
		name:        jsonName(f),
		field:       f,
		desc:        strings.TrimSpace(f.Tag.Get("jsonschema_description")),
		enum:        config.TagValues(f, "enum"),
		defaults:    config.TagValues(f, "default"),
		defaultText: f.Tag.Get("defaultText"),
		required:    slices.Contains(strings.Split(f.Tag.Get("jsonschema"), ","), "required"),
	}
	val, err := m.valueOf(f.Type, f)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", ownerName(owner), o.name, err)
	}
	o.val = val
	if val.kind == vMode {
		// A mode string accepts what the decoder accepts; it reads the vdev modes.
		o.enum = val.modeEnum
	}
	// null is offered where leaving the option out is itself "nothing" (no declared default:
	// disko's nullOr options such as mountpoint, uuid, content, and computed defaults, which
	// are filled in from nothing), not where it stands for a value (destroy = true): there
	// disko rejects null, although the decoder reads it as the default.
	o.discriminator = owner != nil && owner.kind != "" && o.name == "type"
	if o.discriminator {
		if len(o.enum) != 1 || o.enum[0] != owner.kind {
			return nil, fmt.Errorf("%s.type: its jsonschema tag must declare exactly enum=%s", owner.t.Name(), owner.kind)
		}
		// The decoder picks a slot's Go type by it; top-level entries default it.
		o.required = owner.node
	}
	o.nullable = !o.required && len(o.defaults) == 0 && !o.discriminator && !hasDecodeWord(f, "notNull")
	return o, nil
}

// constant tells a `type` option with one accepted value: the tag of a typed node, or one
// of disko's internal tags (btrfs_subvol, topology).
func (o *optionDoc) constant() bool { return o.name == "type" && len(o.enum) == 1 }

// hasDecodeWord reads the decode tag, which tells the decoder how to read a value.
func hasDecodeWord(f reflect.StructField, word string) bool {
	return slices.Contains(strings.Split(f.Tag.Get("decode"), ","), word)
}

func ownerName(td *typeDoc) string {
	if td == nil {
		return "hooks"
	}
	return td.t.Name()
}

// valueOf derives the shape of a value of Go type t; f is the field it was declared by.
func (m *model) valueOf(t reflect.Type, f reflect.StructField) (*valueType, error) {
	if t == modeType {
		return m.modeValue()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return m.valueOf(t.Elem(), f)
	case reflect.String:
		return &valueType{kind: vString}, nil
	case reflect.Bool:
		return &valueType{kind: vBool}, nil
	case reflect.Int:
		return &valueType{kind: vInt}, nil
	case reflect.Interface:
		if t == anyType {
			return &valueType{kind: vAny}, nil
		}
		s, err := m.slot(t)
		if err != nil {
			return nil, err
		}
		return &valueType{kind: vSlot, slot: s}, nil
	case reflect.Slice:
		elem, err := m.valueOf(t.Elem(), reflect.StructField{})
		if err != nil {
			return nil, err
		}
		return &valueType{kind: vList, elem: elem, oneOrMany: hasDecodeWord(f, "oneOrMany")}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key %s is not a string", t.Key())
		}
		elem, err := m.valueOf(t.Elem(), reflect.StructField{})
		if err != nil {
			return nil, err
		}
		return &valueType{kind: vAttrs, elem: elem}, nil
	case reflect.Struct:
		td, ok := m.byType[t]
		if !ok {
			return nil, fmt.Errorf("%s has no prose in internal/docs/prose.go (title, summary, example)", t)
		}
		return &valueType{kind: vStruct, target: td}, nil
	}
	return nil, fmt.Errorf("Go type %s has no documented shape", t)
}

// modeValue reads config.ZpoolMode: a string for all members, or its struct fields
// ({topology = ...}). The string accepts the vdev modes, as the decoder does.
func (m *model) modeValue() (*valueType, error) {
	fields := config.Options(modeType)
	if len(fields) != 1 {
		return nil, fmt.Errorf("%s: expected exactly one JSON option (topology), found %d", modeType, len(fields))
	}
	target, err := m.valueOf(fields[0].Type, fields[0])
	if err != nil {
		return nil, err
	}
	if target.kind != vStruct {
		return nil, fmt.Errorf("%s.%s is not a struct", modeType, fields[0].Name)
	}
	modeField, ok := modeType.FieldByName("Mode")
	var enum []string
	if ok {
		enum = config.TagValues(modeField, "enum")
	}
	if len(enum) == 0 {
		vdevMode, _ := reflect.TypeFor[config.Vdev]().FieldByName("Mode")
		enum = config.TagValues(vdevMode, "enum")
	}
	return &valueType{kind: vMode, target: target.target, modeEnum: enum, modeField: fields[0]}, nil
}

// slot documents a slot interface once.
func (m *model) slot(t reflect.Type) (*slotDoc, error) {
	for _, s := range m.slots {
		if s.t == t {
			return s, nil
		}
	}
	s := &slotDoc{t: t, name: strings.ToLower(strings.TrimSuffix(t.Name(), "Node")) + " slot"}
	s.anchor = slug(s.name)
	for _, kind := range config.AllowedTypes(t) {
		nt := reflect.TypeOf(config.NodeTypes[kind]()).Elem()
		td, ok := m.byType[nt]
		if !ok {
			return nil, fmt.Errorf("%s (type %q) has no prose in internal/docs/prose.go", nt, kind)
		}
		s.members = append(s.members, td)
	}
	if len(s.members) == 0 {
		return nil, fmt.Errorf("no node type implements %s", t)
	}
	m.slots = append(m.slots, s)
	return s, nil
}

// targets lists the documented types a value may hold.
func (v *valueType) targets() []*typeDoc {
	switch v.kind {
	case vList, vAttrs:
		return v.elem.targets()
	case vStruct, vMode:
		return []*typeDoc{v.target}
	case vSlot:
		return v.slot.members
	}
	return nil
}

// edges lists what option `name` of from may hold, each with the path below from.
func (v *valueType) edges(from *typeDoc, name string) []edge {
	switch v.kind {
	case vList:
		if v.oneOrMany {
			return v.elem.edges(from, name)
		}
		return v.elem.edges(from, name+".*")
	case vAttrs:
		return v.elem.edges(from, name+".<name>")
	case vStruct:
		return []edge{{from: from, option: name, to: v.target}}
	case vMode:
		return []edge{{from: from, option: name + "." + jsonName(v.modeField), to: v.target}}
	case vSlot:
		var out []edge
		for _, td := range v.slot.members {
			out = append(out, edge{from: from, option: name, to: td, slot: v.slot})
		}
		return out
	}
	return nil
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
