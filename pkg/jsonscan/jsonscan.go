// Package jsonscan finds the ends of JSON tokens in bytes already known to
// be valid JSON, without decoding them: the receiver cuts the pull request
// out of a delivery and the queue compacts it with it, so neither decodes
// a large object it only passes on. It imports only the standard library.
package jsonscan

import "bytes"

// StringEnd returns the index just past the JSON string whose opening
// quote is data[i], or len(data) when the string is not closed.
func StringEnd(data []byte, i int) int {
	for i++; ; i++ {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return len(data)
		}
		i += j
		escapes := 0
		for k := i - 1; data[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return i + 1
		}
	}
}
