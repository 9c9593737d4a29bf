package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// A delivery body is most of a pull_request delivery's cost: encoding/json
// checks all of it and then decodes all of it, skipping what it does not
// want byte by byte through its scanner. decodeObject decodes the few
// members YourCI reads instead, once the whole body has been checked by
// validJSON: the walk over members (see members) skips the rest at the
// speed of bytes.IndexByte, and only the small values wanted go through
// json.Unmarshal. The result is what json.Unmarshal into the same struct
// gives (FuzzDecodePull holds it to that): names match exactly or
// case-insensitively, a repeated member is decoded again over the first,
// null leaves a value alone.

// member is one member of an object that decodeObject decodes: its name
// and how to decode its value.
type member struct {
	name   string
	decode func(value []byte) error
}

// leaf decodes a member's value into v with json.Unmarshal.
func leaf(name string, v any) member {
	return member{name: name, decode: func(b []byte) error { return json.Unmarshal(b, v) }}
}

// object decodes a member's value, an object, with decodeObject.
func object(name string, ms ...member) member {
	return member{name: name, decode: func(b []byte) error { return decodeObject(b, ms...) }}
}

// decodeObject decodes into ms the members of the JSON object data that
// they name, in the order sent. data must be valid JSON. null decodes to
// nothing; any other value but an object is an error, as for a struct.
func decodeObject(data []byte, ms ...member) error {
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	var err error
	ok := members(data, func(name, value []byte) {
		for _, m := range ms {
			if err == nil && nameMatches(name, m.name) {
				err = m.decode(value)
				return
			}
		}
	})
	if !ok {
		return fmt.Errorf("json: cannot unmarshal %.20q into an object", data)
	}
	return err
}

// decode decodes a pull_request delivery from body, which must be valid
// JSON, into pd, keeping the last pull_request object as sent (raw).
func (pd *pullDelivery) decode(body []byte) error {
	pr := &pd.PullRequest
	pull := member{name: "pull_request", decode: func(b []byte) error {
		if len(b) > 0 && b[0] == '{' {
			pr.raw = b
		}
		return decodeObject(b,
			leaf("number", &pr.Number),
			leaf("draft", &pr.Draft),
			object("head", leaf("sha", &pr.Head.SHA)),
			leaf("updated_at", &pr.UpdatedAt))
	}}
	return decodeObject(body,
		leaf("action", &pd.Action),
		leaf("number", &pd.Number),
		pull,
		object("repository",
			leaf("name", &pd.Repository.Name),
			leaf("full_name", &pd.Repository.FullName),
			object("owner", leaf("login", &pd.Repository.Owner.Login))),
		object("installation", leaf("id", &pd.Installation.ID)),
		object("label", leaf("name", &pd.Label.Name)),
		object("sender", leaf("login", &pd.Sender.Login)),
		object("changes", leaf("base", &pd.Changes.Base)),
	)
}
