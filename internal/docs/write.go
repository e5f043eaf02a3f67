package docs

import (
	"fmt"
	"os"
	"path/filepath"
)

// The formats of the options reference, as `disko-compile docs --format` names them.
const (
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats lists the formats Render accepts.
var Formats = []string{FormatMarkdown, FormatHTML}

// Markdown returns the options reference as GitHub-flavoured Markdown (docs/options.md).
func Markdown() ([]byte, error) { return Render(FormatMarkdown) }

// HTML returns the options reference as one self-contained HTML page (docs/options.html).
func HTML() ([]byte, error) { return Render(FormatHTML) }

// Render returns the options reference in one of Formats.
func Render(format string) ([]byte, error) {
	if format != FormatMarkdown && format != FormatHTML {
		return nil, fmt.Errorf("docs: unknown format %q (use %s or %s)", format, FormatMarkdown, FormatHTML)
	}
	m, err := buildModel()
	if err != nil {
		return nil, err
	}
	d, err := m.reference()
	if err != nil {
		return nil, err
	}
	if format == FormatHTML {
		return d.renderHTML(), nil
	}
	return d.renderMarkdown(), nil
}

// FileName is the name the reference has in a directory: options.md or options.html.
func FileName(format string) string {
	if format == FormatHTML {
		return "options.html"
	}
	return "options.md"
}

// WriteDir renders the reference in format and writes it into dir (created if needed) as
// FileName(format); it returns the path written. `disko-compile docs --out DIR` uses it.
func WriteDir(dir, format string) (string, error) {
	data, err := Render(format)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("docs: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName(format))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("docs: writing %s: %w", path, err)
	}
	return path, nil
}
