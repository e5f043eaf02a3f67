package docs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the committed schema and docs")

// corpusDir holds disko's example layouts (shared test data, outside the repository).
const corpusDir = "../../../shared/corpus/disko-examples"

const schemaFile = "../../schema/disko.schema.json"

// fakeLib stands in for nixpkgs' lib (not available here) with what with-lib.nix uses.
const fakeLib = `{ genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names); inherit (builtins) replaceStrings; }`

// compileSchema compiles the generated schema, and the definition ref inside it when ref
// is not empty (for example "#/$defs/GPT").
func compileSchema(t *testing.T, ref string) *jsonschema.Schema {
	t.Helper()
	data, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const url = "mem:///disko.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url + ref)
	if err != nil {
		t.Fatalf("compiling the generated schema%s: %v", ref, err)
	}
	return s
}

func validateJSON(s *jsonschema.Schema, data string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func TestSchemaIsCommitted(t *testing.T) {
	got, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	checkCommitted(t, schemaFile, got)
}

// checkCommitted compares generated output with its committed copy, or rewrites the copy.
func checkCommitted(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./internal/docs -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the model generates: regenerate with `go test ./internal/docs -update` and commit it", path)
	}
}

// TestSchemaAcceptsCorpus validates what Nix evaluates every corpus layout to, wrapped in
// disko.devices and bare.
func TestSchemaAcceptsCorpus(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate is not installed (Debian package nix-bin): cannot evaluate the corpus")
	}
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.nix"))
	if err != nil || len(files) == 0 {
		t.Skipf("no disko examples in %s: the shared corpus is missing", corpusDir)
	}
	s := compileSchema(t, "")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			abs, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			expr := "let f = import " + abs + "; in if builtins.isFunction f then f { lib = " + fakeLib + "; } else f"
			cmd := exec.Command(nix, "--eval", "--strict", "--json", "-E", expr)
			cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("nix-instantiate: %v\n%s", err, stderr.String())
			}
			if err := validateJSON(s, string(out)); err != nil {
				t.Errorf("wrapped layout rejected: %v", err)
			}
			var wrapped struct {
				Disko struct {
					Devices json.RawMessage `json:"devices"`
				} `json:"disko"`
			}
			if err := json.Unmarshal(out, &wrapped); err != nil || wrapped.Disko.Devices == nil {
				t.Fatalf("%s does not evaluate to {disko.devices = ...}: %v", file, err)
			}
			if err := validateJSON(s, string(wrapped.Disko.Devices)); err != nil {
				t.Errorf("bare devices rejected: %v", err)
			}
		})
	}
}

// TestSchemaCases checks what the schema accepts and rejects beyond the corpus.
func TestSchemaCases(t *testing.T) {
	s := compileSchema(t, "")
	const esp = `{"size":"512M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}}`
	disk := func(content string) string {
		return `{"disk":{"main":{"type":"disk","device":"/dev/sda","content":` + content + `}}}`
	}
	gpt := func(part string) string { return disk(`{"type":"gpt","partitions":{"p":` + part + `}}`) }
	zpool := func(pool string) string { return `{"zpool":{"z":` + pool + `}}` }
	cases := []struct {
		name string
		doc  string
		ok   bool
		why  string // a line of the validation error for a rejected document
	}{
		{"empty devices", `{}`, true, ""},
		{"wrapped", `{"disko":{"devices":` + gpt(esp) + `}}`, true, ""},
		{"bare", gpt(esp), true, ""},
		{"unknown top-level key", `{"disks":{}}`, false, "additional properties 'disks'"},
		{"unknown key beside devices", `{"disko":{"devices":{},"enableConfig":true}}`, false, "additional properties 'enableConfig'"},
		{"unknown key in a disk", `{"disk":{"main":{"device":"/dev/sda","contnet":null}}}`, false, "additional properties 'contnet'"},
		{"unknown key in a partition", gpt(`{"size":"1G","sise":"2G"}`), false, "additional properties 'sise'"},
		{"unknown key in a filesystem", disk(`{"type":"filesystem","format":"ext4","mountpont":"/"}`), false, "additional properties 'mountpont'"},
		{"unknown key in a zpool topology", zpool(`{"type":"zpool","mode":{"topology":{"vdevs":[]}}}`), false, "additional properties 'vdevs'"},
		{"internal keys of disko's module output", gpt(`{"size":"1G","_index":1,"_meta":{}}`), true, ""},
		{"type may be left out at the top level", `{"disk":{"main":{"device":"/dev/sda"}}}`, true, ""},
		{"type is required in a slot", disk(`{"format":"ext4"}`), false, "at '/disk/main/content': missing property 'type'"},
		{"unknown type", disk(`{"type":"ext4"}`), false, "at '/disk/main/content/type': value must be 'gpt'"},
		{"partition table inside a partition", gpt(`{"size":"1G","content":{"type":"gpt"}}`), false, "at '/disk/main/content/partitions/p/content/type': value must be 'filesystem'"},
		{"partition table inside luks", disk(`{"type":"luks","name":"c","content":{"type":"gpt"}}`), true, ""},
		{"dataset outside a zpool", disk(`{"type":"zfs_fs"}`), false, "at '/disk/main/content/type': value must be 'filesystem'"},
		{"filesystem as a dataset", zpool(`{"type":"zpool","datasets":{"d":{"type":"filesystem","format":"ext4"}}}`), false, "at '/zpool/z/datasets/d/type': value must be 'zfs_fs'"},
		{"options of another type", disk(`{"type":"swap","format":"ext4"}`), false, "additional properties 'format'"},
		{"missing required device", `{"disk":{"main":{"type":"disk"}}}`, false, "missing property 'device'"},
		{"missing required format", disk(`{"type":"filesystem"}`), false, "missing property 'format'"},
		{"null content", disk(`null`), true, ""},
		{"null mountpoint", disk(`{"type":"filesystem","format":"ext4","mountpoint":null}`), true, ""},
		{"null where a default is declared", `{"disk":{"main":{"device":"/dev/sda","destroy":null}}}`, false, "at '/disk/main/destroy': got null, want boolean"},
		{"bad table format", disk(`{"type":"table","format":"mbr"}`), false, "at '/disk/main/content/format': value must be one of 'gpt', 'msdos'"},
		{"bad part-type", disk(`{"type":"table","partitions":[{"part-type":"primry"}]}`), false, "part-type': value must be one of"},
		{"bad discardPolicy", disk(`{"type":"swap","discardPolicy":"always"}`), false, "discardPolicy': value must be one of"},
		{"bad lvm_type", `{"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"l":{"size":"1G","lvm_type":"raid10"}}}}}`, false, "lvm_type': value must be one of"},
		{"bad mdadm level", `{"mdadm":{"md":{"type":"mdadm","level":3}}}`, false, "at '/mdadm/md/level': value must be one of"},
		{"good mdadm level", `{"mdadm":{"md":{"type":"mdadm","level":10,"metadata":"1.0"}}}`, true, ""},
		{"bad mdadm metadata", `{"mdadm":{"md":{"type":"mdadm","metadata":"0.90"}}}`, false, "at '/mdadm/md/metadata': value must be one of"},
		{"bad zpool mode", zpool(`{"type":"zpool","mode":"mirrored"}`), false, "at '/zpool/z/mode': value must be one of"},
		{"stripe zpool mode", zpool(`{"type":"zpool","mode":""}`), true, ""},
		{"bad vdev mode", zpool(`{"type":"zpool","mode":{"topology":{"vdev":[{"mode":"raidz4","members":["a"]}]}}}`), false, "at '/zpool/z/mode/topology/vdev/0/mode': value must be one of"},
		{"special as a list", zpool(`{"type":"zpool","mode":{"topology":{"special":[{"mode":"mirror","members":["a","b"]}]}}}`), true, ""},
		{"special as a single vdev", zpool(`{"type":"zpool","mode":{"topology":{"special":{"mode":"mirror","members":["a","b"]}}}}`), true, ""},
		{"special as a string", zpool(`{"type":"zpool","mode":{"topology":{"special":"a"}}}`), false, "at '/zpool/z/mode/topology/special': got string, want object"},
		{"mode without topology", zpool(`{"type":"zpool","mode":{}}`), false, "at '/zpool/z/mode': missing property 'topology'"},
		{"bad fs-type", disk(`{"type":"table","partitions":[{"fs-type":"zfs"}]}`), false, "fs-type': value must be one of"},
		{"wrong type of value", gpt(`{"size":1}`), false, "at '/disk/main/content/partitions/p/size': got number, want string"},
		{"wrong type discriminator at the top level", `{"disk":{"main":{"type":"gpt","device":"/dev/sda"}}}`, false, "at '/disk/main/type': value must be 'disk'"},
		{"luks settings take anything", disk(`{"type":"luks","name":"c","settings":{"allowDiscards":true,"keyFileSize":4096}}`), true, ""},
		{"size with an unknown unit", gpt(`{"size":"500X"}`), false, "at '/disk/main/content/partitions/p/size': '500X' does not match pattern"},
		{"sizes the validator accepts", gpt(`{"size":"100%","start":"1MiB","end":"-10m"}`), true, ""},
		{"gpt position with a space", gpt(`{"size":"1G","start":"1 M"}`), false, "at '/disk/main/content/partitions/p/start': '1 M' does not match pattern"},
		{"image size", `{"disk":{"main":{"device":"/dev/sda","imageSize":"2 GB"}}}`, false, "at '/disk/main/imageSize': '2 GB' does not match pattern"},
		{"lv sizes", `{"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"100%FREE"},"b":{"size":"10GiB"},"c":{"size":"50%vg"}}}}}`, true, ""},
		{"lv size", `{"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"lots"}}}}}`, false, "at '/lvm_vg/vg/lvs/a/size': 'lots' does not match pattern"},
		{"zvol size", zpool(`{"type":"zpool","datasets":{"v":{"type":"zfs_volume","size":"big"}}}`), false, "at '/zpool/z/datasets/v/size': 'big' does not match pattern"},
		{"swap file size", disk(`{"type":"btrfs","swap":{"s":{"size":"1.5G"}}}`), false, "at '/disk/main/content/swap/s/size': '1.5G' does not match pattern"},
		{"table positions", disk(`{"type":"table","partitions":[{"start":"1MiB","end":"10cyl"},{"start":"one"}]}`), false, "at '/disk/main/content/partitions/1/start': 'one' does not match pattern"},
		{"pool options are strings", zpool(`{"type":"zpool","options":{"ashift":12}}`), false, "at '/zpool/z/options/ashift': got number, want string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validateJSON(s, c.doc)
			if c.ok && err != nil {
				t.Errorf("rejected %s: %v", c.doc, err)
			}
			if !c.ok && err == nil {
				t.Errorf("accepted %s", c.doc)
			}
			if !c.ok && err != nil && !strings.Contains(err.Error(), c.why) {
				t.Errorf("rejected %s, but not with %q:\n%v", c.doc, c.why, err)
			}
		})
	}
}

// TestExamplesMatchSchema checks that every example the reference shows is valid.
func TestExamplesMatchSchema(t *testing.T) {
	for _, p := range proseTable {
		of := p.t
		if p.exampleOf != nil {
			of = p.exampleOf
		}
		t.Run(p.t.Name(), func(t *testing.T) {
			if strings.TrimSpace(p.example) == "" {
				t.Fatal("no example")
			}
			if err := validateJSON(compileSchema(t, "#/$defs/"+of.Name()), p.example); err != nil {
				t.Errorf("the example does not match the schema of %s: %v", of.Name(), err)
			}
		})
	}
}

// TestSchemaObjectsAreClosed checks that every object with named options rejects other
// keys, so that a typo is an error in the editor too.
func TestSchemaObjectsAreClosed(t *testing.T) {
	data, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var root any
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	objects := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["properties"]; ok {
				objects++
				if v["additionalProperties"] != false {
					t.Errorf("%s has properties but does not reject other keys", path)
				}
			}
			for k, child := range v {
				walk(path+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(path+"/"+strconv.Itoa(i), child)
			}
		}
	}
	walk("#", root)
	if objects < 30 {
		t.Errorf("only %d objects with properties in the schema", objects)
	}
}
