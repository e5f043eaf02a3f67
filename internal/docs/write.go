package docs

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// The formats of the options reference, as `disko-compile docs --format` names them.
const (
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats lists the formats Render accepts.
var Formats = []string{FormatMarkdown, FormatHTML}

// Markdown returns the options reference as GitHub-flavoured Markdown (docs/options.md).
func Markdown() ([]byte, error) { return renderFormat(FormatMarkdown) }

// HTML returns the options reference as one self-contained HTML page (docs/options.html).
func HTML() ([]byte, error) { return renderFormat(FormatHTML) }

// Render returns the options reference in one of Formats, as the files of a docs
// directory keyed by name (one file, FileName(format), for both formats today).
func Render(format string) (map[string][]byte, error) {
	data, err := renderFormat(format)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{FileName(format): data}, nil
}

func renderFormat(format string) ([]byte, error) {
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

// WriteDir renders the reference in format and writes its files into dir (created if
// needed); it returns the paths written. `disko-compile docs --out DIR` does the same.
func WriteDir(dir, format string) ([]string, error) {
	files, err := Render(format)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("docs: creating %s: %w", dir, err)
	}
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return nil, fmt.Errorf("docs: writing %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}
