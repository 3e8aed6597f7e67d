// Package loopback finds free ports on the loopback interface, for nodes
// that a benchmark or a test starts on this machine.
package loopback

import (
	"fmt"
	"io"
	"net"
)

// FreeAddrs returns n distinct "127.0.0.1:port" addresses on network
// ("tcp" or "udp") that were free a moment ago: it binds them all, then
// lets them go. Another process may take one in between; callers that
// cannot bind an address should fail clearly, not retry forever.
func FreeAddrs(network string, n int) ([]string, error) {
	var out []string
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range n {
		var addr net.Addr
		switch network {
		case "udp":
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			held, addr = append(held, c), c.LocalAddr()
		case "tcp":
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			held, addr = append(held, l), l.Addr()
		default:
			return nil, fmt.Errorf("loopback: network %q, want tcp or udp", network)
		}
		out = append(out, addr.String())
	}
	return out, nil
}
