// Package netfault holds Weft's network fault tests: real `weft node`
// processes in a full mesh, under load, with links cut, nodes killed, and
// datagrams delayed and dropped; each test then checks that the nodes
// converge and that nothing a node acknowledged is lost. docs/TESTING.md
// says what each test does, how to run them and what they measured.
//
// The one non-test type, Proxy, impairs a UDP link in userspace: it is what
// the tests use where the kernel has no netem qdisc.
package netfault

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLimit is the most datagrams a Proxy holds at once when
// Impairment.Limit is 0 (netem's default is 1,000 packets; QUIC at a few
// thousand packets a second and 50 ms of delay needs more).
const DefaultLimit = 10_000

// maxDatagram is the largest datagram a Proxy forwards whole.
const maxDatagram = 64 << 10

// Impairment is what a Proxy does to every datagram, in both directions.
// The zero Impairment forwards everything at once.
type Impairment struct {
	// Delay is added to every datagram.
	Delay time.Duration
	// Jitter adds a further delay drawn uniformly from [0, Jitter); it can
	// reorder datagrams, as netem's jitter does.
	Jitter time.Duration
	// Loss is the probability, 0..1, that a datagram is dropped.
	Loss float64
	// Limit bounds the datagrams held for delay; those beyond it are
	// dropped and counted as overflow. 0 means DefaultLimit.
	Limit int
}

// ProxyStats counts what a Proxy did.
type ProxyStats struct {
	Forwarded uint64 // datagrams delivered, both directions
	Dropped   uint64 // datagrams dropped at random (Impairment.Loss)
	Overflow  uint64 // datagrams dropped because Limit were held
	Flows     int    // client addresses seen
}

// Proxy sits in front of a UDP service (a node's gossip port) and forwards
// datagrams both ways, delaying and dropping them as its Impairment says.
// Clients send to Addr; for each client address the Proxy opens one socket
// towards the target, so the target sees one distinct address per client
// and its answers go back to the right client.
//
// Random choices (loss, jitter) come from a source seeded by NewProxy's
// seed. Datagram timing depends on the scheduler, so a seed reproduces the
// sequence of choices, not which datagram each falls on.
//
// The methods are safe for concurrent use. Close stops the Proxy and waits
// for its goroutines.
type Proxy struct {
	ln     *net.UDPConn
	target *net.UDPAddr

	mu     sync.Mutex // guards the fields below
	imp    Impairment
	rng    *rand.Rand
	flows  map[netip.AddrPort]*flow
	queue  datagrams
	order  uint64 // tie-break of equal delivery times: arrival order
	closed bool

	wake chan struct{} // a datagram was queued
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	forwarded, dropped, overflow atomic.Uint64
}

// flow is one client of the Proxy and its socket towards the target.
type flow struct {
	client netip.AddrPort
	up     *net.UDPConn
}

// NewProxy listens on listen (a UDP "host:port"; port 0 picks one) and
// forwards to target.
func NewProxy(listen, target string, imp Impairment, seed uint64) (*Proxy, error) {
	if imp.Loss < 0 || imp.Loss > 1 || imp.Delay < 0 || imp.Jitter < 0 || imp.Limit < 0 {
		return nil, fmt.Errorf("netfault: bad impairment %+v", imp)
	}
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("netfault: proxy target: %w", err)
	}
	laddr, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("netfault: proxy listen: %w", err)
	}
	ln, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("netfault: proxy listen: %w", err)
	}
	setBuffers(ln)
	p := &Proxy{
		ln: ln, target: taddr, imp: imp,
		rng:   rand.New(rand.NewPCG(seed, 0x6e65746661756c74)),
		flows: make(map[netip.AddrPort]*flow),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.readClients() }()
	go func() { defer p.wg.Done(); p.deliver() }()
	return p, nil
}

// Addr returns the address clients send to.
func (p *Proxy) Addr() string { return p.ln.LocalAddr().String() }

// SetImpairment changes the impairment of the datagrams that arrive from now
// on; those already held keep their delivery time.
func (p *Proxy) SetImpairment(imp Impairment) {
	p.mu.Lock()
	p.imp = imp
	p.mu.Unlock()
}

// Stats returns the counters so far.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	flows := len(p.flows)
	p.mu.Unlock()
	return ProxyStats{Forwarded: p.forwarded.Load(), Dropped: p.dropped.Load(),
		Overflow: p.overflow.Load(), Flows: flows}
}

// Close stops the Proxy: it closes its sockets, drops what it holds, and
// waits for its goroutines. It returns nil, also when called again.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.ln.Close()
	for _, f := range p.flows {
		f.up.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// readClients reads what clients send and queues it towards the target.
func (p *Proxy) readClients() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := p.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if p.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (ICMP unreachable and the like)
		}
		f, err := p.flowOf(from)
		if err != nil {
			continue // closed meanwhile, or out of sockets: as if lost
		}
		p.enqueue(buf[:n], f, false)
	}
}

// flowOf returns the flow of a client, opening its socket to the target on
// the first datagram.
func (p *Proxy) flowOf(client netip.AddrPort) (*flow, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, net.ErrClosed
	}
	if f, ok := p.flows[client]; ok {
		return f, nil
	}
	up, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil, err
	}
	setBuffers(up)
	f := &flow{client: client, up: up}
	p.flows[client] = f
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.readTarget(f) }()
	return f, nil
}

// socketBuffer is the receive and send buffer a Proxy asks for on each
// socket (the kernel caps it at net.core.rmem_max and wmem_max), so that
// bursts are not lost in the Proxy's sockets beyond the Loss it is told.
const socketBuffer = 4 << 20

func setBuffers(c *net.UDPConn) {
	c.SetReadBuffer(socketBuffer)
	c.SetWriteBuffer(socketBuffer)
}

// readTarget reads the target's answers to one client and queues them back.
func (p *Proxy) readTarget(f *flow) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := f.up.Read(buf)
		if err != nil {
			if p.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED while the target is down (a node killed and
			// not yet back): keep the flow, the target may return.
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.enqueue(buf[:n], f, true)
	}
}

func (p *Proxy) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// enqueue applies the impairment to one datagram: drops it, or copies it
// and schedules its delivery.
func (p *Proxy) enqueue(b []byte, f *flow, toClient bool) {
	p.mu.Lock()
	imp := p.imp
	if imp.Loss > 0 && p.rng.Float64() < imp.Loss {
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	}
	limit := imp.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if len(p.queue) >= limit {
		p.mu.Unlock()
		p.overflow.Add(1)
		return
	}
	d := imp.Delay
	if imp.Jitter > 0 {
		d += time.Duration(p.rng.Int64N(int64(imp.Jitter)))
	}
	p.order++
	heap.Push(&p.queue, &datagram{at: time.Now().Add(d), order: p.order,
		data: append([]byte(nil), b...), flow: f, toClient: toClient})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// deliver sends each held datagram when its time comes.
func (p *Proxy) deliver() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*datagram
	for {
		p.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(p.queue) > 0 && !p.queue[0].at.After(now) {
			due = append(due, heap.Pop(&p.queue).(*datagram))
		}
		wait := time.Hour
		if len(p.queue) > 0 {
			wait = p.queue[0].at.Sub(now)
		}
		p.mu.Unlock()
		for _, d := range due {
			var err error
			if d.toClient {
				_, err = p.ln.WriteToUDPAddrPort(d.data, d.flow.client)
			} else {
				_, err = d.flow.up.Write(d.data)
			}
			if err == nil {
				p.forwarded.Add(1)
			}
		}
		if len(due) > 0 {
			continue // more may have come due while writing
		}
		timer.Reset(wait)
		select {
		case <-p.done:
			return
		case <-p.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

// datagram is one datagram held for delay.
type datagram struct {
	at       time.Time
	order    uint64
	data     []byte
	flow     *flow
	toClient bool
}

// datagrams is a min-heap by delivery time, then arrival.
type datagrams []*datagram

func (q datagrams) Len() int { return len(q) }
func (q datagrams) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].order < q[j].order
}
func (q datagrams) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *datagrams) Push(x any)   { *q = append(*q, x.(*datagram)) }
func (q *datagrams) Pop() any {
	old := *q
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return d
}
