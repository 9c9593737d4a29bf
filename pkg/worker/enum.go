package worker

import "fmt"

// enumName is the String of one of the plans' small enums: its name in
// names, or kind(N) for a value past them.
func enumName[E ~int](e E, names []string, kind string) string {
	if e >= 0 && int(e) < len(names) {
		return names[e]
	}
	return fmt.Sprintf("%s(%d)", kind, int(e))
}
