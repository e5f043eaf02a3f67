// Package docs derives the user-facing descriptions of a layout from the Go model in
// internal/config: the options reference in Markdown and HTML (Render), and the
// JSON Schema that editors use, which the package's tests generate into
// schema/disko.schema.json (`go test ./internal/docs -update`) and keep equal to the model.
// disko cannot document its own recursive types; here every type is reflected from one
// model, rendered once, and linked both ways, so the reference and the schema always say
// what the decoder accepts.
package docs
