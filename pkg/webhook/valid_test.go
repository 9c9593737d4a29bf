package webhook

import (
	"encoding/json"
	"strings"
	"testing"
)

var validSeeds = []string{
	``, ` `, `null`, ` {"a":[1,-0.5e+3,true,false,null,"\u00e9\n\"\\\/"]} `, `{"a":1,}`, `[1,]`, `{"a" 1}`,
	`01`, `-`, `1.`, `1e`, `.5`, `"\x"`, `"\u12G4"`, "\"a\tb\"", "\"\xff\xfe\"", `{} {}`, `nul`, `truex`,
	`[[[]]]`, `{"a":{"b":{}}}`, `"unterminated`, `{"a":"b"`, `[1 2]`, `{1:2}`, `-01`, `1E+9`, `0.0e-0`,
}

func TestValidJSON(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := append([]string{deep(maxJSONDepth), deep(maxJSONDepth + 1),
		strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth)}, validSeeds...)
	for _, c := range cases {
		name := c
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
				t.Errorf("validJSON(%.60q) = %v, json.Valid says %v", c, got, want)
			}
		})
	}
}

// FuzzValidJSON holds validJSON to json.Valid's answer.
func FuzzValidJSON(f *testing.F) {
	addTestdata(f)
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}
