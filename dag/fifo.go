package dag

// fifo is a queue on a slice that reclaims its consumed front as it goes.
type fifo[T any] struct {
	q    []T
	head int
}

func (f *fifo[T]) push(v T) { f.q = append(f.q, v) }

func (f *fifo[T]) len() int { return len(f.q) - f.head }

// front returns the oldest element; the queue must not be empty.
func (f *fifo[T]) front() T { return f.q[f.head] }

func (f *fifo[T]) pop() T {
	v := f.q[f.head]
	var zero T
	f.q[f.head] = zero
	f.head++
	if f.head > 1024 && f.head*2 > len(f.q) {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q = f.q[:n]
		f.head = 0
	}
	return v
}

// filter keeps the elements for which keep is true, in order.
func (f *fifo[T]) filter(keep func(T) bool) {
	n := 0
	for _, v := range f.q[f.head:] {
		if keep(v) {
			f.q[n] = v
			n++
		}
	}
	clear(f.q[n:])
	f.q = f.q[:n]
	f.head = 0
}
