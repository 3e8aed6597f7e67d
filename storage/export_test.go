package storage

// SetCommitHook makes f run before each commit's transaction; an error from
// it fails the commit as a full disk would. nil removes it.
func SetCommitHook(s *Store, f func() error) {
	if f == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&f)
}
