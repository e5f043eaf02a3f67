// Package schema holds the JSON Schema of layouts as committed. internal/docs generates
// it from the Go model in its tests (`go test ./internal/docs -update`), and
// TestSchemaIsCommitted keeps this copy equal to what the model generates; nix/module.nix
// reads the same file. Commands print this copy rather than generate it, so that they do
// not link the generator (invopop/jsonschema, with YAML and Go's parser behind it),
// whose package initialisation cost every compile about 0.2 ms (issue 18 item 1).
package schema

import _ "embed"

// JSON is schema/disko.schema.json, byte for byte.
//
//go:embed disko.schema.json
var JSON []byte
