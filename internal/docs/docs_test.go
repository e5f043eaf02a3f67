package docs

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

var docFiles = map[string]string{
	FormatMarkdown: "../../docs/options.md",
	FormatHTML:     "../../docs/options.html",
}

func render(t *testing.T, format string) string {
	t.Helper()
	out, err := renderFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestDocsAreCommitted(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			checkCommitted(t, docFiles[format], []byte(render(t, format)))
		})
	}
}

// modelTypes walks the Go model on its own (not through buildModel) and returns every
// struct type a layout can reach with its option names, hooks included.
func modelTypes(t *testing.T) map[reflect.Type][]string {
	t.Helper()
	out := map[reflect.Type][]string{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		switch rt.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(rt.Elem())
		case reflect.Interface:
			if rt.NumMethod() == 0 {
				return
			}
			for _, kind := range config.AllowedTypes(rt) {
				walk(reflect.TypeOf(config.NodeTypes[kind]()))
			}
		case reflect.Struct:
			if _, seen := out[rt]; seen {
				return
			}
			out[rt] = nil
			for _, f := range config.Options(rt) {
				out[rt] = append(out[rt], jsonName(f))
				walk(f.Type)
			}
		}
	}
	for _, f := range config.Options(devicesType) {
		walk(f.Type)
	}
	delete(out, modeType) // documented as the zpool's mode option and the topology type
	return out
}

// section returns the text of the section whose heading has anchor id, up to the next
// heading of the same or a higher level.
func section(t *testing.T, format, doc, id string) string {
	t.Helper()
	var start *regexp.Regexp
	var next string
	if format == FormatHTML {
		start = regexp.MustCompile(`<h([1-6]) id="` + regexp.QuoteMeta(id) + `">`)
	} else {
		start = nil
		for _, line := range strings.Split(doc, "\n") {
			if m := mdHeading.FindStringSubmatch(line); m != nil && slug(plainText(m[2])) == id {
				start = regexp.MustCompile("(?m)^" + regexp.QuoteMeta(line) + "$")
				break
			}
		}
	}
	if start == nil {
		t.Fatalf("%s: no heading with anchor #%s", format, id)
	}
	loc := start.FindStringSubmatchIndex(doc)
	if loc == nil {
		t.Fatalf("%s: no heading with anchor #%s", format, id)
	}
	rest := doc[loc[1]:]
	if format == FormatHTML {
		level := doc[loc[2]:loc[3]]
		next = `<h[1-` + level + `][ >]`
	} else {
		level := len(strings.TrimRight(strings.SplitN(doc[loc[0]:loc[1]], " ", 2)[0], " "))
		next = `(?m)^#{1,` + string(rune('0'+level)) + `} `
	}
	if end := regexp.MustCompile(next).FindStringIndex(rest); end != nil {
		rest = rest[:end[0]]
	}
	return rest
}

var mdHeading = regexp.MustCompile(`^(#{1,6}) (.*)$`)

func codeIn(format, name string) string {
	if format == FormatHTML {
		return "<code>" + html.EscapeString(name) + "</code>"
	}
	return code(name)
}

// TestEveryTypeAndOptionAppears checks that each type of the model has a section in both
// formats that names every one of its options.
func TestEveryTypeAndOptionAppears(t *testing.T) {
	m, err := buildModel()
	if err != nil {
		t.Fatal(err)
	}
	types := modelTypes(t)
	for _, format := range Formats {
		doc := render(t, format)
		for rt, options := range types {
			anchor := slug(m.hookProse.title)
			if rt != hooksType {
				td, ok := m.byType[rt]
				if !ok {
					t.Errorf("%s: %s is not documented", format, rt)
					continue
				}
				anchor = td.anchor
			}
			text := section(t, format, doc, anchor)
			for _, o := range options {
				if !strings.Contains(text, codeIn(format, o)) {
					t.Errorf("%s: the section #%s (%s) does not name option %q", format, anchor, rt.Name(), o)
				}
			}
		}
		for _, o := range config.Options(hooksType) {
			if !strings.Contains(section(t, format, doc, "hooks"), codeIn(format, jsonName(o))) {
				t.Errorf("%s: the hooks section does not name %q", format, jsonName(o))
			}
		}
		for _, f := range config.Options(devicesType) {
			if !strings.Contains(doc, codeIn(format, "disko.devices."+jsonName(f)+".<name>")) {
				t.Errorf("%s: the collection %s is not documented", format, jsonName(f))
			}
		}
	}
}

// TestEveryOptionHasDescription walks every type of the model by reflection.
func TestEveryOptionHasDescription(t *testing.T) {
	types := modelTypes(t)
	types[devicesType] = nil
	types[modeType] = nil
	for rt := range types {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if f.Anonymous || !f.IsExported() {
				continue
			}
			if strings.TrimSpace(f.Tag.Get("jsonschema_description")) == "" {
				t.Errorf("config.%s.%s has no jsonschema_description tag", rt.Name(), f.Name)
			}
		}
	}
}

// TestLinksResolve checks every #anchor link against the anchors of the same document:
// GitHub's heading anchors for Markdown, element ids for HTML.
func TestLinksResolve(t *testing.T) {
	md := render(t, FormatMarkdown)
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if m := mdHeading.FindStringSubmatch(line); m != nil && !inFence {
			id := slug(plainText(m[2]))
			if anchors[id] {
				t.Errorf("markdown: two headings have the anchor #%s (GitHub would number the second)", id)
			}
			anchors[id] = true
		}
	}
	links := regexp.MustCompile(`\]\(#([^)]*)\)`).FindAllStringSubmatch(md, -1)
	if len(links) < 100 {
		t.Errorf("markdown: only %d internal links", len(links))
	}
	for _, l := range links {
		if !anchors[l[1]] {
			t.Errorf("markdown: link to #%s, which no heading has", l[1])
		}
	}

	page := render(t, FormatHTML)
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(` id="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if ids[m[1]] {
			t.Errorf("html: two elements have id %q", m[1])
		}
		ids[m[1]] = true
	}
	hrefs := regexp.MustCompile(` href="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(hrefs) < 100 {
		t.Errorf("html: only %d links", len(hrefs))
	}
	for _, h := range hrefs {
		target, ok := strings.CutPrefix(html.UnescapeString(h[1]), "#")
		if !ok {
			t.Errorf("html: link to %q leaves the page", h[1])
			continue
		}
		if !ids[target] {
			t.Errorf("html: link to #%s, which no element has", target)
		}
	}
	for _, external := range []string{"<link", "<script", "src=", "@import", "url("} {
		if strings.Contains(page, external) {
			t.Errorf("html: the page is not self-contained: it has %q", external)
		}
	}
}

// TestDiskoParity checks that every option users of disko know (disko.md §1) has the same
// name in the model.
func TestDiskoParity(t *testing.T) {
	m, err := buildModel()
	if err != nil {
		t.Fatal(err)
	}
	hooks := []string{"preCreateHook", "postCreateHook", "preMountHook", "postMountHook", "preUnmountHook", "postUnmountHook"}
	disko := map[string][]string{
		"disk":                {"type", "name", "device", "destroy", "imageName", "imageSize", "content"},
		"gpt":                 {"type", "device", "partitions", "efiGptPartitionFirst"},
		"gpt partition":       {"name", "type", "size", "start", "end", "alignment", "priority", "uuid", "label", "attributes", "device", "content", "hybrid"},
		"hybrid MBR entry":    {"mbrPartitionType", "mbrBootableFlag"},
		"table":               {"type", "device", "format", "partitions"},
		"table partition":     {"name", "part-type", "fs-type", "start", "end", "flags", "bootable", "content"},
		"filesystem":          {"type", "device", "format", "extraArgs", "mountOptions", "mountpoint"},
		"swap":                {"type", "device", "discardPolicy", "extraArgs", "mountOptions", "priority", "randomEncryption", "resumeDevice"},
		"luks":                {"type", "device", "name", "passwordFile", "keyFile", "askPassword", "settings", "additionalKeyFiles", "initrdUnlock", "extraFormatArgs", "extraOpenArgs", "content"},
		"lvm_pv":              {"type", "device", "vg"},
		"lvm_vg":              {"type", "name", "lvs"},
		"logical volume":      {"name", "size", "lvm_type", "pool", "extraArgs", "priority", "content"},
		"mdraid":              {"type", "device", "name"},
		"mdadm":               {"type", "name", "level", "metadata", "extraArgs", "content"},
		"zfs":                 {"type", "device", "pool"},
		"zpool":               {"type", "name", "mode", "options", "rootFsOptions", "mountpoint", "mountOptions", "datasets"},
		"topology":            {"vdev", "spare", "log", "dedup", "special", "cache"},
		"vdev":                {"mode", "members"},
		"zfs_fs":              {"type", "name", "options", "mountpoint", "mountOptions"},
		"zfs_volume":          {"type", "name", "size", "options", "extraArgs", "mountOptions", "content"},
		"btrfs":               {"type", "device", "extraArgs", "mountOptions", "mountpoint", "swap", "subvolumes"},
		"btrfs subvolume":     {"name", "extraArgs", "mountOptions", "mountpoint", "swap"},
		"btrfs swap file":     {"size", "path", "priority", "options"},
		"bcachefs":            {"type", "device", "filesystem", "label", "extraFormatArgs"},
		"bcachefs_filesystem": {"type", "name", "extraFormatArgs", "mountOptions", "mountpoint", "uuid", "passwordFile", "subvolumes"},
		"bcachefs subvolume":  {"name", "mountOptions", "mountpoint"},
		"nodev":               {"type", "fsType", "device", "mountpoint", "mountOptions"},
	}
	withHooks := []string{"disk", "gpt", "table", "filesystem", "swap", "luks", "lvm_pv", "lvm_vg", "mdraid", "mdadm", "zfs", "zpool", "zfs_fs", "zfs_volume", "btrfs", "bcachefs", "bcachefs_filesystem", "nodev"}
	byName := map[string]*typeDoc{}
	for _, td := range m.types {
		byName[plainText(td.title)] = td
	}
	for name, options := range disko {
		td, ok := byName[name]
		if !ok {
			t.Errorf("disko's %s has no type in the model", name)
			continue
		}
		have := map[string]bool{}
		for _, o := range td.options {
			have[o.name] = true
		}
		for _, o := range options {
			if !have[o] {
				t.Errorf("disko's %s option %q is missing from config.%s", name, o, td.t.Name())
			}
		}
	}
	for _, name := range withHooks {
		if td := byName[name]; td != nil && !td.hooks {
			t.Errorf("disko's %s takes the hooks (%s), config.%s does not", name, strings.Join(hooks, ", "), td.t.Name())
		}
	}
}

// TestMarkupEscapes feeds hostile text through esc: it must come out unchanged as plain
// text and as HTML, in a paragraph and in a table cell of both formats.
func TestMarkupEscapes(t *testing.T) {
	for _, s := range []string{
		"plain", "a_b _c_ *d* **e** `f` ``g``", "[x](#y) [z]", "<script>alert(1)</script> & &amp;",
		`back\slash \* \_`, "pipe | in | cell", "~~strike~~", "unicode ✓ ö", "trailing\\", "lvm_vg zfs_fs _x x_",
	} {
		if got := plainText(esc(s)); got != s {
			t.Errorf("plainText(esc(%q)) = %q", s, got)
		}
		if got := inlineHTML(esc(s)); got != html.EscapeString(s) {
			t.Errorf("inlineHTML(esc(%q)) = %q", s, got)
		}
		if got := plainText(code(s)); got != s {
			t.Errorf("plainText(code(%q)) = %q", s, got)
		}
		d := newDocument("t")
		d.table([]string{"h"}, [][]string{{esc(s)}, {code(s)}})
		md := string(d.renderMarkdown())
		for _, line := range strings.Split(md, "\n") {
			if strings.HasPrefix(line, "| ") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 2 {
				t.Errorf("markdown table row %q has an unescaped pipe", line)
			}
		}
	}
}

func TestSlug(t *testing.T) {
	for text, want := range map[string]string{
		"`gpt`": "gpt", "gpt partition": "gpt-partition", "`zfs_fs`": "zfs_fs",
		"Top-level collections": "top-level-collections", "NixOS configuration": "nixos-configuration",
		"hybrid MBR entry": "hybrid-mbr-entry",
	} {
		if got := slug(plainText(text)); got != want {
			t.Errorf("slug(%q) = %q, want %q", text, got, want)
		}
	}
}

// TestExamplesEvaluate evaluates every example as Nix shows it and compares the value with
// the example's JSON, so the Nix rendering cannot say something else.
func TestExamplesEvaluate(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate is not installed (Debian package nix-bin)")
	}
	for _, p := range proseTable {
		t.Run(p.t.Name(), func(t *testing.T) {
			assign, err := nixAssignment(p.exampleAt, p.example)
			if err != nil {
				t.Fatal(err)
			}
			path := strings.TrimSuffix(p.exampleAt, "[]")
			expr := "let v = { " + assign + " }; in v." + path
			if strings.HasSuffix(p.exampleAt, "[]") {
				expr = "builtins.head (" + expr + ")"
			}
			cmd := exec.Command(nix, "--eval", "--strict", "--json", "-E", expr)
			cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s\n%s", err, expr, stderr.String())
			}
			var got, want any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(p.example), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the Nix shown evaluates to %s, the example is %s", out, p.example)
			}
		})
	}
}

// TestRenderUnknownFormat: an unknown format fails and names the known ones.
func TestRenderUnknownFormat(t *testing.T) {
	if _, err := Render("pdf"); err == nil || !strings.Contains(err.Error(), "markdown") {
		t.Errorf("an unknown format should fail and name the known ones, got %v", err)
	}
}
