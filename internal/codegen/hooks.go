package codegen

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// Hooks are shell code from the layout, run where disko runs them:
//
//   - preCreateHook/postCreateHook around the node's creation, its children included;
//   - pre/post mount and unmount hooks around the node's part of mounting (unmounting):
//     before the first and after the last step that belongs to the node or to a node
//     inside it. disko instead repeats an outer node's hook around every filesystem below
//     it; once is what a hook on a disk means.
//
// A hook runs in a subshell that holds the node's options as shell variables, like
// disko's: strings and numbers exported (device, name, mountpoint, format, ...), lists as
// arrays, attribute sets as associative arrays, booleans as 1 or empty, `-` in option
// names turned into `_`. Child nodes, partitions, datasets and other hooks are left out.
// The hook's code reaches the script as one quoted word that disko_hook evals, so whatever
// it contains cannot change the structure of the generated script around it.

// hooked is a node with hooks, as the mount sequence needs it.
type hooked struct {
	path  optPath
	node  any
	hooks *config.Hooks
}

// hooksOf returns the node's hooks, or nil when it has none set.
func hooksOf(node any) *config.Hooks {
	v := reflect.ValueOf(node)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("Hooks")
	if !f.IsValid() {
		return nil
	}
	h := f.Addr().Interface().(*config.Hooks)
	if *h == (config.Hooks{}) {
		return nil
	}
	return h
}

// hookVars writes the node's options as shell variables.
func hookVars(w *writer, node any) {
	v := reflect.ValueOf(node).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || strings.HasPrefix(name, "_") || skipHookVar(name, f.Type) {
			continue
		}
		name = strings.ReplaceAll(name, "-", "_")
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Slice:
			w.linef("declare -a %s=(%s)", sh(name), words(scalars(fv)))
		case reflect.Map:
			var b strings.Builder
			for _, k := range sortedMapKeys(fv) {
				b.WriteString("[" + string(qKey(k)) + "]=" + string(Q(scalar(fv.MapIndex(reflect.ValueOf(k))))) + " ")
			}
			w.linef("declare -A %s=(%s)", sh(name), sh(strings.TrimSpace(b.String())))
		default:
			w.linef("declare -x %s=%s", sh(name), Q(scalar(fv)))
		}
	}
}

// skipHookVar leaves out what disko leaves out: children, partitions, datasets, swap
// files, the zpool mode, and attribute sets of submodules.
func skipHookVar(name string, t reflect.Type) bool {
	switch name {
	case "content", "partitions", "datasets", "swap", "mode", "subvolumes", "lvs":
		return true
	}
	return t.Kind() == reflect.Interface
}

func scalars(v reflect.Value) []string {
	out := make([]string, v.Len())
	for i := range v.Len() {
		out[i] = scalar(v.Index(i))
	}
	return out
}

// scalar renders an option value the way Nix's toString would for a shell variable.
func scalar(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return scalar(v.Elem())
	case reflect.String:
		return v.String()
	case reflect.Bool:
		if v.Bool() {
			return "1"
		}
		return ""
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	}
	b, _ := json.Marshal(v.Interface())
	return string(b)
}

func sortedMapKeys(m reflect.Value) []string {
	var keys []string
	for _, k := range m.MapKeys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	return keys
}

// withCreateHooks runs body (the node's creation) between its create hooks.
func withCreateHooks(w *writer, p optPath, node any, body func()) {
	h := hooksOf(node)
	if h == nil || h.PreCreateHook == "" && h.PostCreateHook == "" {
		body()
		return
	}
	w.raw("# shellcheck disable=SC2034 # the hooks read these variables")
	w.block("(", ")", func() {
		hookVars(w, node)
		if h.PreCreateHook != "" {
			w.linef("disko_hook %s preCreateHook %s", p.q(), Q(h.PreCreateHook))
		}
		body()
		if h.PostCreateHook != "" {
			w.linef("disko_hook %s postCreateHook %s", p.q(), Q(h.PostCreateHook))
		}
	})
}

// runHook writes a mount or unmount hook with the node's variables around it.
func runHook(w *writer, o *hooked, when, code string) {
	w.comment(o.path.field(when))
	w.raw("# shellcheck disable=SC2034 # the hook reads these variables")
	w.block("(", ")", func() {
		hookVars(w, o.node)
		w.linef("disko_hook %s %s %s", o.path.q(), sh(when), Q(code))
	})
}

// sequence renders actions in order (mount, or with unmount the reverse order), with each
// node's hooks before its first and after its last action.
func sequence(w *writer, acts []*action, unmount bool) {
	if unmount {
		acts = slices.Clone(acts)
		slices.Reverse(acts)
	}
	first, last := map[*hooked]int{}, map[*hooked]int{}
	for i, a := range acts {
		for _, o := range a.owners {
			if _, ok := first[o]; !ok {
				first[o] = i
			}
			last[o] = i
		}
	}
	for i, a := range acts {
		for _, o := range a.owners {
			if first[o] != i {
				continue
			}
			if pre := hookCode(o, unmount, true); pre != "" {
				runHook(w, o, hookName(unmount, true), pre)
			}
		}
		if unmount {
			w.raw(strings.TrimSuffix(a.unmount, "\n"))
		} else {
			w.raw(strings.TrimSuffix(a.mount, "\n"))
		}
		for j := len(a.owners) - 1; j >= 0; j-- {
			o := a.owners[j]
			if last[o] != i {
				continue
			}
			if post := hookCode(o, unmount, false); post != "" {
				runHook(w, o, hookName(unmount, false), post)
			}
		}
	}
}

func hookName(unmount, pre bool) string {
	switch {
	case unmount && pre:
		return "preUnmountHook"
	case unmount:
		return "postUnmountHook"
	case pre:
		return "preMountHook"
	default:
		return "postMountHook"
	}
}

func hookCode(o *hooked, unmount, pre bool) string {
	switch {
	case unmount && pre:
		return o.hooks.PreUnmountHook
	case unmount:
		return o.hooks.PostUnmountHook
	case pre:
		return o.hooks.PreMountHook
	default:
		return o.hooks.PostMountHook
	}
}
