package webhook

import (
	"bytes"
	"encoding/json"
	"testing"
)

// memberValue returns the value of the last member of the JSON object data
// whose name matches key as encoding/json matches a struct field's name
// (exactly, or else case-insensitively): the value json.Unmarshal last
// stores in that field, if members and nameMatches are right.
func memberValue(data []byte, key string) []byte {
	var found []byte
	members(data, func(name, value []byte) {
		if nameMatches(name, key) {
			found = value
		}
	})
	return found
}

// rawPull is the oracle memberValue answers to: what encoding/json stores
// in a field named pull_request.
type rawPull struct {
	PullRequest json.RawMessage `json:"pull_request"`
}

func TestMemberValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, want string
	}{
		{name: "object_member", data: `{"a":1,"pull_request":{"b":[1,{"c":"}"}]},"z":2}`, want: `{"b":[1,{"c":"}"}]}`},
		{name: "whitespace_around_everything", data: " {\n \"pull_request\" :\t{ \"x\" : \"y\" } \r\n} ", want: `{ "x" : "y" }`},
		{name: "escaped_quotes_and_backslashes_in_strings", data: `{"s":"a\\\"pull_request\"\\","pull_request":{"t":"\\"}}`, want: `{"t":"\\"}`},
		{name: "the_name_inside_a_nested_object_is_not_a_member", data: `{"x":{"pull_request":{"no":1}}}`, want: ``},
		{name: "the_name_as_a_string_value_is_not_a_member", data: `{"x":"pull_request","y":["pull_request"]}`, want: ``},
		{name: "last_duplicate_wins_as_for_encoding_json", data: `{"pull_request":{"n":1},"pull_request":{"n":2}}`, want: `{"n":2}`},
		{name: "case_insensitive_name_as_for_encoding_json", data: `{"Pull_Request":{"n":3}}`, want: `{"n":3}`},
		{name: "escaped_name", data: `{"pull\u005frequest":{"n":4}}`, want: `{"n":4}`},
		{name: "literal_values_are_skipped", data: `{"a":true,"b":-1.5e3,"c":null,"pull_request":null}`, want: `null`},
		{name: "empty_object", data: `{}`, want: ``},
		{name: "not_an_object", data: `["pull_request",{"pull_request":1}]`, want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := memberValue([]byte(tt.data), "pull_request")
			if string(got) != tt.want {
				t.Errorf("memberValue(%s) = %q, want %q", tt.data, got, tt.want)
			}
			var o rawPull
			if json.Unmarshal([]byte(tt.data), &o) == nil && string(o.PullRequest) != tt.want {
				t.Errorf("the test is wrong: encoding/json stores %q", o.PullRequest)
			}
		})
	}
}

// FuzzMemberValue checks that memberValue finds exactly what encoding/json
// stores, for every document encoding/json accepts.
func FuzzMemberValue(f *testing.F) {
	addTestdata(f)
	f.Add([]byte(`{"s":"\\\"","PULL_REQUEST":[{"a":"]"}],"pull_request":{"b":"\"}"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o rawPull
		if json.Unmarshal(data, &o) != nil {
			return
		}
		if got := memberValue(data, "pull_request"); !bytes.Equal(got, o.PullRequest) {
			t.Fatalf("memberValue = %q, encoding/json stores %q", got, o.PullRequest)
		}
	})
}
