package jsonscan

import "testing"

func TestStringEnd(t *testing.T) {
	tests := []struct {
		name string
		data string
		want int
	}{
		{"plain", `"abc",1`, 5},
		{"escaped quote", `"a\"b"x`, 6},
		{"escaped backslash before the quote", `"a\\"x`, 5},
		{"three backslashes", `"a\\\"b"`, 8},
		{"empty", `""`, 2},
		{"unclosed", `"abc`, 4},
		{"unclosed after an escaped quote", `"a\"`, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StringEnd([]byte(tt.data), 0); got != tt.want {
				t.Errorf("StringEnd(%q) = %d, want %d", tt.data, got, tt.want)
			}
		})
	}
}
