package webhook

import (
	"bytes"
	"encoding/json"

	"github.com/yourci/yourci/pkg/jsonscan"
)

// members calls fn with the name (quoted, as sent) and the value of each
// member of the JSON object data, in order, and reports whether data is an
// object. data must be valid JSON: the walk follows the structure without
// checking it, which costs a fraction of a decode (strings, most of a
// payload, are skipped with bytes.IndexByte).
func members(data []byte, fn func(name, value []byte)) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	for i++; ; i++ {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return true // the object's '}'
		}
		end := jsonscan.StringEnd(data, i)
		name := data[i:end]
		i = skipSpace(data, skipSpace(data, end)+1) // past ':'
		vend := valueEnd(data, i)
		fn(name, data[i:vend])
		i = skipSpace(data, vend)
		if i >= len(data) || data[i] != ',' {
			return true
		}
	}
}

// nameMatches reports whether quoted, a member name with its quotes, names
// key for encoding/json.
func nameMatches(quoted []byte, key string) bool {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key || bytes.EqualFold(inner, []byte(key))
	}
	var name string
	if err := json.Unmarshal(quoted, &name); err != nil {
		return false
	}
	return name == key || bytes.EqualFold([]byte(name), []byte(key))
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just past the value that starts at data[i].
func valueEnd(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return jsonscan.StringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = jsonscan.StringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // a number, true, false or null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
