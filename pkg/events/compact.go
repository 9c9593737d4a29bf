package events

import (
	"bytes"

	"github.com/yourci/yourci/pkg/jsonscan"
)

// appendCompact appends data, valid JSON, to dst without the whitespace
// between its tokens: json.Compact's result (FuzzAppendCompact holds it to
// that), at the cost of little more than a copy, since strings are copied
// whole. It does not check data: invalid JSON gives bytes of no use, but
// never a panic.
func appendCompact(dst, data []byte) []byte {
	for i := 0; i < len(data); {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			q = len(data) - i
		}
		for _, c := range data[i : i+q] {
			switch c {
			case ' ', '\t', '\n', '\r':
			default:
				dst = append(dst, c)
			}
		}
		i += q
		if i < len(data) {
			end := jsonscan.StringEnd(data, i)
			dst = append(dst, data[i:end]...)
			i = end
		}
	}
	return dst
}
