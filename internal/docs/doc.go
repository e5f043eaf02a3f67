// Package docs derives the user-facing descriptions of a layout from the Go model in
// internal/config: the JSON Schema that editors use (Schema) and the options reference in
// Markdown and HTML (Render, WriteDir). disko cannot document its own recursive types; here
// every type is reflected from one model, rendered once, and linked both ways, so the
// reference and the schema always say what the decoder accepts.
package docs
