package pipeline

import (
	"bytes"
	"testing"
)

func TestBoundedKeepsAtMostMax(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		max      int
		all      bool
		writes   []int // sizes of the writes, of the bytes 0, 1, 2, ...
		want     int   // bytes kept
		wantOver bool
	}{
		{name: "under_the_cap_keeps_everything", max: 100 << 10, writes: []int{10, 70 << 10}, want: 10 + 70<<10},
		{name: "over_the_cap_keeps_the_first_max", max: 100 << 10, writes: []int{90 << 10, 90 << 10, 1}, want: 100 << 10, wantOver: true},
		{name: "exactly_the_cap_is_not_over", max: 1000, writes: []int{999, 1}, want: 1000},
		{name: "all_or_nothing_drops_it_once_over", max: 100 << 10, all: true, writes: []int{90 << 10, 90 << 10, 5}, want: 0, wantOver: true},
		{name: "all_or_nothing_under_the_cap_keeps_it", max: 100 << 10, all: true, writes: []int{90 << 10}, want: 90 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &bounded{max: tc.max, all: tc.all}
			var all []byte
			for i, n := range tc.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				all = append(all, p...)
				if k, err := b.Write(p); k != n || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v; want it to take everything", n, k, err)
				}
			}
			data, over := b.snapshot()
			if len(data) != tc.want || over != tc.wantOver {
				t.Fatalf("kept %d bytes, over %v; want %d, %v", len(data), over, tc.want, tc.wantOver)
			}
			if !bytes.Equal(data, all[:len(data)]) {
				t.Error("what was kept is not the start of what was written")
			}
			if b.size() != int64(len(all)) {
				t.Errorf("size() = %d, want %d", b.size(), len(all))
			}
		})
	}
}
