package docs

import "fmt"

// The formats of the options reference, as `disko-compile docs --format` names them.
const (
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats lists the formats Render accepts.
var Formats = []string{FormatMarkdown, FormatHTML}

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
