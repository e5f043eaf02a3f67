package codegen

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// The layout's own code is what the emitters write: functions of simple commands joined
// by ;, &&, || and |, if/elif/else/fi, subshells on lines of their own, declarations,
// quoted words, parameter expansions, one-line command and process substitutions, trap
// handlers in single quotes, one statement per line (continued with " \"). scanLayout
// reads that part of the shell language line by line and cuts the code into the chunks
// that chunksOf would make of its syntax tree. Parsing it was a third of what Generate
// costs, and a compile runs Generate once, in a fresh process. On anything outside that
// part (loops, case, heredocs, `command -v` guards, groups) the scan gives up and
// layoutProgram parses instead. TestScanLayout checks that the scan and the parse agree
// wherever the scan answers.

// scanLayout returns the chunks of the layout's code, or false when the code holds
// something the scan does not read.
func scanLayout(code string) ([]chunk, bool) {
	if !utf8.ValidString(code) {
		return nil, false // the parse refuses it, with the error Generate returns
	}
	s := layoutScanner{src: code, seen: map[string]bool{}}
	var chunks []chunk
	var raw [][]string // each chunk's words, before layoutKeep
	for s.pos < len(s.src) {
		start := s.pos
		line := s.physicalLine()
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		clear(s.seen)
		s.words = nil
		var c chunk
		if name, ok := funcHeader(line); ok {
			c.funcs = []string{name}
			if !s.functionBody(&c) {
				return nil, false
			}
		} else {
			s.pos = start // read it again as a statement
			if !s.topStatement(&c) {
				return nil, false
			}
		}
		chunks = append(chunks, c)
		raw = append(raw, s.words)
	}
	names := map[string]bool{}
	for _, c := range chunks {
		for _, n := range append(slices.Clip(c.funcs), c.vars...) {
			names[n] = true
		}
	}
	keep := layoutKeep(names)
	for i := range chunks {
		c := &chunks[i]
		for _, w := range raw[i] {
			if keep(w) && !slices.Contains(c.funcs, w) && !slices.Contains(c.vars, w) {
				c.words = append(c.words, guarded{name: w})
			}
		}
	}
	return chunks, true
}

// layoutScanner reads the layout's code. words collects the current chunk's words; seen
// holds them, and the chunk's commands as "c NAME" (a name holds no space), so that each
// is added once, as chunksOf's seen does.
type layoutScanner struct {
	src   string
	pos   int
	words []string
	seen  map[string]bool
	toks  []scanToken
	subs  []string // the code of the line's command and process substitutions
}

// physicalLine returns the next line, without its newline.
func (s *layoutScanner) physicalLine() string {
	rest := s.src[s.pos:]
	i := strings.IndexByte(rest, '\n')
	if i < 0 {
		s.pos = len(s.src)
		return rest
	}
	s.pos += i + 1
	return rest[:i]
}

// funcHeader recognises `NAME() {` at the start of a line, as function writes it.
func funcHeader(line string) (string, bool) {
	name, ok := strings.CutSuffix(line, "() {")
	if !ok || !isShellName(name) {
		return "", false
	}
	return name, true
}

// isShellName reports whether s is a shell name ([A-Za-z_][A-Za-z0-9_]*).
func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// functionBody reads the statements of a function up to its closing `}` at the start of
// a line.
func (s *layoutScanner) functionBody(c *chunk) bool {
	s.word(c.funcs[0])
	subshells := 0
	for s.pos < len(s.src) {
		start := s.pos
		line := s.physicalLine()
		if line == "}" {
			return subshells == 0
		}
		switch trimmed := strings.TrimLeft(line, " \t"); {
		case trimmed == "" || trimmed[0] == '#':
		case trimmed == "(":
			subshells++
		case trimmed == ")":
			if subshells--; subshells < 0 {
				return false
			}
		default:
			s.pos = start
			if !s.statement(c) {
				return false
			}
		}
	}
	return false // no closing brace
}

// statement reads one line of a function body, substitutions included.
func (s *layoutScanner) statement(c *chunk) bool {
	if !s.tokens() || !s.commands(c, s.toks, false) {
		return false
	}
	for _, sub := range s.subs {
		if !s.inner(c, sub) {
			return false
		}
	}
	return true
}

// inner reads code inside a statement (a substitution, a trap handler) as statements of
// the same chunk.
func (s *layoutScanner) inner(c *chunk, code string) bool {
	sub := layoutScanner{src: code, seen: s.seen}
	for sub.pos < len(sub.src) {
		if !sub.statement(c) {
			return false
		}
	}
	s.words = append(s.words, sub.words...)
	return true
}

// topStatement reads a statement outside any function: assignments only (a variable of
// the script), or one command or pipeline that runs where it stands.
func (s *layoutScanner) topStatement(c *chunk) bool {
	if !s.tokens() {
		return false
	}
	toks := s.toks
	if len(toks) == 0 || len(s.subs) > 0 || slices.Contains(toks, scanToken{kind: tokOp, text: ";"}) {
		return false // a statement per chunk; a substitution runs where it stands
	}
	var vars []string
	for _, t := range toks {
		name, ok := t.assignment()
		if !ok || t.kind != tokWord {
			vars = nil
			break
		}
		vars = append(vars, name)
	}
	if vars != nil {
		c.vars = vars
		s.wordsOf(toks)
		return true
	}
	if first := toks[0]; first.kind == tokWord && first.text == "export" {
		for _, t := range toks[1:] {
			switch {
			case t.kind != tokWord || !t.plain:
				return false
			case isShellName(t.text):
				c.vars = append(c.vars, t.text)
			case !strings.HasPrefix(t.text, "-"):
				return false
			}
		}
		if c.vars == nil {
			return false
		}
		s.wordsOf(toks)
		return true
	}
	c.runs = true
	return s.commands(c, toks, true)
}

// commands adds what a line's tokens run and mention to the chunk. A command's first
// word is a program it runs, unless it is a builtin, a keyword or not a plain word.
func (s *layoutScanner) commands(c *chunk, toks []scanToken, top bool) bool {
	first := true // the next word starts a command
	trap := false // the word is trap's first argument
	for _, t := range toks {
		switch t.kind {
		case tokOp:
			first = true
			continue
		case tokRedirect:
			if first {
				return false // a redirection before the command
			}
			s.wordsOf([]scanToken{t})
			continue
		}
		if !first {
			s.wordsOf([]scanToken{t})
			if trap {
				trap = false
				if handler, ok := singleQuoted(t.text); ok && !s.inner(c, handler) {
					return false
				}
			}
			continue
		}
		if t.plain {
			switch t.text {
			case "if", "elif", "then", "else", "!":
				if top {
					return false
				}
				continue
			case "fi":
				if top {
					return false
				}
				first = false
				continue
			case "local", "export", "declare", "readonly", "typeset":
				if top {
					return false // assigns, or runs, by its arguments
				}
				first = false
				continue
			case "while", "until", "for", "case", "select", "function", "do", "done", "esac", "in",
				"time", "coproc", "[[", "]]", "let", "command", "{", "}":
				return false
			case "trap":
				if top {
					return false
				}
				trap = true
			}
		}
		if t.escaped || t.plain && t.text != "[" && strings.ContainsRune(t.text, '[') {
			return false // a command named with escapes, an array element's assignment, a pattern
		}
		s.wordsOf([]scanToken{t})
		if _, ok := t.assignment(); ok {
			continue
		}
		first = false
		if t.plain && !slices.Contains(bashBuiltins, t.text) && !s.seen["c "+t.text] {
			s.seen["c "+t.text] = true
			c.cmds = append(c.cmds, guarded{name: t.text})
		}
	}
	return true
}

// singleQuoted returns the text of a word that is one single-quoted string.
func singleQuoted(word string) (string, bool) {
	if len(word) < 2 || word[0] != '\'' || strings.IndexByte(word[1:], '\'') != len(word)-2 {
		return "", false
	}
	return word[1 : len(word)-1], true
}

// wordsOf adds the shell names in the tokens' text to the chunk's words.
func (s *layoutScanner) wordsOf(toks []scanToken) {
	for _, t := range toks {
		for name := range shellWords(t.text) {
			s.word(name)
		}
	}
}

// word adds a name to the chunk's words, once.
func (s *layoutScanner) word(name string) {
	if !s.seen[name] {
		s.seen[name] = true
		s.words = append(s.words, name)
	}
}

// scanToken is a word, an operator (; && || |) or a redirection with its target.
type scanToken struct {
	kind    int
	text    string
	plain   bool // a word without quotes, expansions or escapes: a literal to the parser
	escaped bool // a word with a backslash outside quotes
}

const (
	tokWord = iota
	tokOp
	tokRedirect
)

// assignment returns the variable a word assigns (NAME=... or NAME+=...).
func (t scanToken) assignment() (string, bool) {
	i := strings.IndexByte(t.text, '=')
	if i <= 0 {
		return "", false
	}
	name := strings.TrimSuffix(t.text[:i], "+")
	return name, isShellName(name)
}

// tokens reads one logical line (lines ending in " \" continue) into s.toks.
func (s *layoutScanner) tokens() bool {
	s.toks = s.toks[:0]
	s.subs = s.subs[:0]
	src := s.src
	i := s.pos
	start := -1 // where the current word began
	plain := true
	escaped := false
	redirect := false
	target := 0 // where a redirection's target starts
	ok := true
	flush := func(end int) {
		if start >= 0 && redirect && end <= target {
			ok = false // no target
		}
		if start >= 0 {
			kind := tokWord
			if redirect {
				kind = tokRedirect
			}
			s.toks = append(s.toks, scanToken{kind: kind, text: src[start:end], plain: plain && !redirect, escaped: escaped})
		}
		start, plain, escaped, redirect = -1, true, false, false
	}
	begin := func() {
		if start < 0 {
			start = i
		}
	}
	for i < len(src) {
		b := src[i]
		switch {
		case b == '\n':
			flush(i)
			s.pos = i + 1
			return ok
		case b == ' ' || b == '\t':
			if redirect && i == target {
				i++ // the target follows the operator after blanks
				target++
				continue
			}
			flush(i)
			i++
		case b == '\\':
			switch {
			case i+1 >= len(src):
				return false
			case src[i+1] == '\n' && start < 0:
				i += 2 // the line goes on
			case src[i+1] == '\n':
				return false // a word that goes on
			default:
				begin() // an escaped character, in a word that cannot name a command here
				plain = false
				escaped = true
				i += 2
			}
		case b == '\'':
			begin()
			plain = false
			j := strings.IndexByte(src[i+1:], '\'')
			if j < 0 || strings.IndexByte(src[i+1:i+1+j], '\n') >= 0 {
				return false
			}
			i += j + 2
		case b == '"':
			begin()
			plain = false
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				switch src[j] {
				case '\\':
					j++
				case '`', '\n':
					return false
				case '$':
					if j+1 < len(src) && src[j+1] == '(' {
						end, ok := s.substitution(j + 2)
						if !ok {
							return false
						}
						j = end
					}
				}
			}
			if j >= len(src) {
				return false
			}
			i = j + 1
		case b == '$':
			begin()
			plain = false
			if i+1 >= len(src) {
				return false
			}
			switch next := src[i+1]; {
			case next == '(':
				end, ok := s.substitution(i + 2)
				if !ok {
					return false
				}
				i = end + 1
			case next == '{':
				j := strings.IndexByte(src[i+2:], '}')
				if j < 0 || strings.ContainsAny(src[i+2:i+2+j], "{(`'\"\\\n") {
					return false
				}
				i += j + 3
			case next == '_' || next >= 'a' && next <= 'z' || next >= 'A' && next <= 'Z' || next >= '0' && next <= '9',
				strings.IndexByte("@*#?$!-", next) >= 0:
				i++
			default:
				return false // $( $' $" and a $ the parser may read otherwise
			}
		case b == ';' || b == '|' || b == '&':
			op := src[i : i+1]
			if i+1 < len(src) && (src[i+1] == '|' || src[i+1] == '&' || src[i+1] == ';') {
				op = src[i : i+2]
			}
			if op != ";" && op != "|" && op != "&&" && op != "||" {
				return false // background, |&, ;; and the like
			}
			flush(i)
			s.toks = append(s.toks, scanToken{kind: tokOp, text: op})
			i += len(op)
		case (b == '>' || b == '<') && start < 0 && i+1 < len(src) && src[i+1] == '(':
			begin() // a process substitution: a word
			plain = false
			end, ok := s.substitution(i + 2)
			if !ok {
				return false
			}
			i = end + 1
		case b == '(' && start >= 0 && !redirect && strings.HasSuffix(src[start:i], "=") && isShellName(strings.TrimSuffix(src[start:i-1], "+")):
			plain = false // an array's elements: words
			end, ok := closingParen(src, i+1)
			if !ok || strings.Contains(src[i:end], "$(") {
				return false
			}
			i = end + 1
		case b == '>' || b == '<':
			if start >= 0 && !redirect && !allDigits(src[start:i]) {
				flush(i)
			}
			begin()
			redirect = true
			op := 1
			for i+op < len(src) && strings.IndexByte("<>&|", src[i+op]) >= 0 {
				op++
			}
			switch src[i : i+op] {
			case ">", ">>", ">&", "<", "<>", "<&", ">|", "<<<":
			default:
				return false // heredocs, process substitution
			}
			if i+op < len(src) && src[i+op] == '(' {
				return false
			}
			i += op
			target = i
		case b == '#' && start < 0, strings.IndexByte("()`{}", b) >= 0:
			return false // a comment after code, subshells, groups, substitutions
		default:
			begin()
			i++
		}
	}
	flush(i)
	s.pos = len(src)
	return ok
}

// substitution records the code of a command substitution whose text starts at from and
// returns where its closing parenthesis is.
func (s *layoutScanner) substitution(from int) (int, bool) {
	end, ok := closingParen(s.src, from)
	if !ok || from < len(s.src) && s.src[from] == '(' {
		return 0, false // arithmetic
	}
	s.subs = append(s.subs, s.src[from:end])
	return end, true
}

// closingParen returns where the parenthesis that closes one opened before from is, on
// the same line; quoted text is skipped, and a substitution inside double quotes inside
// it (whose quotes this does not follow) makes it give up.
func closingParen(src string, from int) (int, bool) {
	depth := 0
	for i := from; i < len(src); i++ {
		switch src[i] {
		case '\n', '`':
			return 0, false
		case '\\':
			i++
		case '\'':
			j := strings.IndexByte(src[i+1:], '\'')
			if j < 0 {
				return 0, false
			}
			i += j + 1
		case '"':
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				switch {
				case src[j] == '\\':
					j++
				case src[j] == '`' || src[j] == '\n' || src[j] == '$' && j+1 < len(src) && src[j+1] == '(':
					return 0, false
				}
			}
			i = j
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return i, true
			}
			depth--
		}
	}
	return 0, false
}

// allDigits reports whether s is a file descriptor number.
func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
