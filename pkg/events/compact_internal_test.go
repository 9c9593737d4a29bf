package events

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendCompact holds appendCompact to json.Compact for every valid
// document.
func FuzzAppendCompact(f *testing.F) {
	for _, s := range []string{` { "a" : [ 1 , "x \\\" y" , { } ] } `, "\"\\\\\"", "{\n\t\"pull\": {\r\n\"a\": null}\n}", `"unterminated \" `, `{"a":"b"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want bytes.Buffer
		if json.Compact(&want, data) != nil {
			appendCompact(nil, data) // must not panic
			return
		}
		if got := appendCompact([]byte("x"), data); !bytes.Equal(got, append([]byte("x"), want.Bytes()...)) {
			t.Fatalf("appendCompact(%q) = %q, json.Compact gives %q", data, got[1:], want.Bytes())
		}
	})
}
