package loopback

import (
	"net"
	"testing"
)

func TestFreeAddrs(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		addrs, err := FreeAddrs(network, 5)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, a := range addrs {
			if seen[a] {
				t.Errorf("%s: %s twice", network, a)
			}
			seen[a] = true
			// Free again: it can be bound.
			if network == "udp" {
				c, err := net.ListenPacket("udp", a)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				c.Close()
			} else {
				l, err := net.Listen("tcp", a)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				l.Close()
			}
		}
	}
	if _, err := FreeAddrs("sctp", 1); err == nil {
		t.Error("an unknown network was accepted")
	}
}
