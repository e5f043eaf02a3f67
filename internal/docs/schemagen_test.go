package docs

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/invopop/jsonschema"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// Schema returns the JSON Schema of a layout: the JSON that a disko layout file evaluates
// to, either {"disko": {"devices": {...}}} or the bare devices object. Editors use it to
// complete and check layouts; every content slot is a oneOf of the node types allowed there,
// discriminated by a `type` const, so an editor offers the options of the type written.
func Schema() ([]byte, error) {
	m, err := buildModel()
	if err != nil {
		return nil, err
	}
	return m.schema()
}

// defRef points at the definition of a Go type.
func defRef(t reflect.Type) string { return "#/$defs/" + t.Name() }

func (m *model) schema() ([]byte, error) {
	r := &jsonschema.Reflector{
		Anonymous:                  true,
		RequiredFromJSONSchemaTags: true,
		Mapper:                     m.mapType,
	}
	defs := jsonschema.Definitions{}
	for _, t := range append([]reflect.Type{devicesType}, m.typeList()...) {
		maps.Copy(defs, r.ReflectFromType(t).Definitions)
	}
	devices := defs[devicesType.Name()]
	if devices == nil {
		return nil, fmt.Errorf("docs: the schema reflector made no definition for %s", devicesType)
	}
	devices.Title = "disko.devices"
	devices.Description = "The devices of a layout: six collections of top-level devices, each keyed by name."
	devices.PatternProperties = internalKeys()
	for _, td := range m.types {
		def := defs[td.t.Name()]
		if def == nil || def.Properties == nil {
			return nil, fmt.Errorf("docs: the schema reflector made no object definition for %s", td.t)
		}
		def.Title = plainText(td.title)
		def.Description = plainText(td.prose.summary)
		def.PatternProperties = internalKeys()
		for _, o := range td.options {
			p, ok := def.Properties.Get(o.name)
			if !ok {
				return nil, fmt.Errorf("docs: the schema of %s has no property %q", td.t, o.name)
			}
			def.Properties.Set(o.name, m.property(td, o, p))
		}
		if td.node {
			def.Required = append([]string{"type"}, slices.DeleteFunc(def.Required, func(s string) bool { return s == "type" })...)
		}
		for _, o := range m.hooks {
			if p, ok := def.Properties.Get(o.name); ok {
				def.Properties.Set(o.name, m.property(td, o, p))
			}
		}
	}
	disko := objectWith("devices", &jsonschema.Schema{Ref: defRef(devicesType)}, false)
	disko.Description = "The disko options of a NixOS configuration."
	root := &jsonschema.Schema{
		Version:     jsonschema.Version,
		Title:       "disko layout",
		Description: "A disk layout for disko and disko-compile: {\"disko\": {\"devices\": {...}}}, or the devices object alone. Generated from the Go model in internal/config; the options reference (docs/options.md) explains every type.",
		AnyOf: []*jsonschema.Schema{
			objectWith("disko", disko, true),
			{Ref: defRef(devicesType)},
		},
		Definitions: defs,
	}
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("docs: encoding the schema: %w", err)
	}
	return append(out, '\n'), nil
}

func (m *model) typeList() []reflect.Type {
	out := make([]reflect.Type, len(m.types))
	for i, td := range m.types {
		out[i] = td.t
	}
	return out
}

// internalKeys accepts the _-prefixed options of disko's module output (_index, _meta,
// ...), which the decoder skips too.
func internalKeys() map[string]*jsonschema.Schema {
	return map[string]*jsonschema.Schema{"^_": jsonschema.TrueSchema}
}

// objectWith is a closed object schema with one property.
func objectWith(name string, s *jsonschema.Schema, required bool) *jsonschema.Schema {
	out := &jsonschema.Schema{Type: "object", Properties: jsonschema.NewProperties(), AdditionalProperties: jsonschema.FalseSchema}
	out.Properties.Set(name, s)
	if required {
		out.Required = []string{name}
	}
	return out
}

// mapType gives the reflector the schemas of the Go types it cannot read on its own: the
// slot interfaces and ZpoolMode.
func (m *model) mapType(t reflect.Type) *jsonschema.Schema {
	for _, s := range m.slots {
		if s.t == t {
			return slotSchema(s)
		}
	}
	if t == modeType {
		for _, td := range m.types {
			for _, o := range td.options {
				if o.val.kind == vMode {
					return m.modeSchema(o.val)
				}
			}
		}
	}
	return nil
}

func slotSchema(s *slotDoc) *jsonschema.Schema {
	out := &jsonschema.Schema{}
	for _, td := range s.members {
		out.OneOf = append(out.OneOf, &jsonschema.Schema{Ref: defRef(td.t)})
	}
	return out
}

func (m *model) modeSchema(v *valueType) *jsonschema.Schema {
	enum := make([]any, len(v.modeEnum))
	for i, e := range v.modeEnum {
		enum[i] = e
	}
	return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
		{Type: "string", Enum: enum},
		objectWith(jsonName(v.modeField), &jsonschema.Schema{Ref: defRef(v.target.t), Description: v.modeField.Tag.Get("jsonschema_description")}, true),
	}}
}

// property completes the reflected schema p of option o of td with what the reflector
// cannot know: the `type` discriminator, slots inside attribute sets, one-or-many lists,
// computed defaults, the format of sizes and positions, and null.
func (m *model) property(td *typeDoc, o *optionDoc, p *jsonschema.Schema) *jsonschema.Schema {
	if o.constant() {
		p.Const = p.Enum[0]
		p.Enum = nil
		return p
	}
	switch {
	case o.val.kind == vAttrs && o.val.elem.kind == vSlot:
		p.AdditionalProperties = slotSchema(o.val.elem.slot)
	case o.val.kind == vList && o.val.oneOrMany && p.Items != nil:
		p = &jsonschema.Schema{
			Description: p.Description,
			OneOf:       []*jsonschema.Schema{{Type: "array", Items: p.Items}, p.Items},
		}
	case o.val.kind == vMode && len(o.defaults) > 0:
		p.Default = o.defaults[0]
	}
	if o.defaultText != "" {
		p.Description += " Default: " + o.defaultText + "."
	}
	if pattern := config.Pattern(o.field); pattern != "" {
		p.Pattern = pattern // the validator's own rule for the option
	}
	if o.nullable {
		p = orNull(p)
	}
	return p
}

// orNull lets a property be null as well.
func orNull(p *jsonschema.Schema) *jsonschema.Schema {
	switch {
	case p.Ref != "":
		return &jsonschema.Schema{Description: p.Description, AnyOf: []*jsonschema.Schema{{Ref: p.Ref}, {Type: "null"}}}
	case len(p.OneOf) > 0:
		p.OneOf = append(p.OneOf, &jsonschema.Schema{Type: "null"})
	case p.Type != "":
		if p.Extras == nil {
			p.Extras = map[string]any{}
		}
		p.Extras["type"] = []string{p.Type, "null"}
		p.Type = ""
		if p.Enum != nil {
			p.Enum = append(p.Enum, nil)
		}
	}
	return p
}
