package webhook

import "bytes"

// maxJSONDepth is encoding/json's limit on nested arrays and objects.
const maxJSONDepth = 10000

// validJSON reports whether data is one JSON value, with nothing but
// whitespace around it: json.Valid's answer (FuzzValidJSON holds it to
// that), at several times its speed. json.Valid steps through every byte
// with a function call of its scanner; here a string, most of a payload, is
// a tight loop over its bytes.
func validJSON(data []byte) bool {
	v := validator{data: data}
	v.space()
	if !v.value() {
		return false
	}
	v.space()
	return v.i == len(data)
}

// validator walks one document; i is where it is.
type validator struct {
	data  []byte
	i     int
	depth int
}

func (v *validator) space() { v.i = skipSpace(v.data, v.i) }

// at reports whether the next byte is c.
func (v *validator) at(c byte) bool { return v.i < len(v.data) && v.data[v.i] == c }

func (v *validator) value() bool {
	if v.i >= len(v.data) {
		return false
	}
	switch c := v.data[v.i]; {
	case c == '{':
		return v.container('}', true)
	case c == '[':
		return v.container(']', false)
	case c == '"':
		return v.str()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return v.number()
	}
	return false
}

// container checks an object (members) or an array up to its closing byte.
func (v *validator) container(closing byte, members bool) bool {
	if v.depth++; v.depth > maxJSONDepth {
		return false
	}
	v.i++
	v.space()
	if v.at(closing) {
		v.i++
		v.depth--
		return true
	}
	for {
		if members {
			if !v.at('"') || !v.str() {
				return false
			}
			v.space()
			if !v.at(':') {
				return false
			}
			v.i++
			v.space()
		}
		if !v.value() {
			return false
		}
		v.space()
		switch {
		case v.at(','):
			v.i++
			v.space()
		case v.at(closing):
			v.i++
			v.depth--
			return true
		default:
			return false
		}
	}
}

// str checks a string: no control bytes, only JSON's escapes.
func (v *validator) str() bool {
	d := v.data
	for i := v.i + 1; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			v.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(d) {
				return false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return false
				}
				i += 5
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (v *validator) literal(lit string) bool {
	if !bytes.HasPrefix(v.data[v.i:], []byte(lit)) {
		return false
	}
	v.i += len(lit)
	return true
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (v *validator) number() bool {
	if v.at('-') {
		v.i++
	}
	switch {
	case v.at('0'):
		v.i++
	case v.i < len(v.data) && '1' <= v.data[v.i] && v.data[v.i] <= '9':
		v.digits()
	default:
		return false
	}
	if v.at('.') {
		v.i++
		if !v.digits() {
			return false
		}
	}
	if v.at('e') || v.at('E') {
		v.i++
		if v.at('+') || v.at('-') {
			v.i++
		}
		if !v.digits() {
			return false
		}
	}
	return true
}

// digits skips [0-9]+ and reports whether there was one.
func (v *validator) digits() bool {
	start := v.i
	for v.i < len(v.data) && '0' <= v.data[v.i] && v.data[v.i] <= '9' {
		v.i++
	}
	return v.i > start
}
