package reconcile

// SetPageSize makes s list n items per page, so that tests see several
// pages without creating hundreds of pull requests.
func SetPageSize(s *Sweeper, n int) { s.pageSize = n }

// ClosedChanges exposes closedChanges to the external tests.
var ClosedChanges = closedChanges
