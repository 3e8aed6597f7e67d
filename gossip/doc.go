// Package gossip moves messages between Weft nodes over QUIC. It moves
// bytes and never decides validity: what arrives goes to the node through
// the Handler it is given, and the node decides what to relay, request,
// catch up on, or whom to disconnect. docs/GOSSIP.md specifies the wire
// protocol byte by byte.
//
// # Basics
//
// A node has an ed25519 identity; its TLS certificate is self-signed by
// that key (NewCertificate), and peers are pinned by key, not by CA chains.
// The node builds a Transport, runs it, and talks to it:
//
//	t, err := gossip.New(gossip.Config{
//		Identity: key,                     // ed25519.PrivateKey
//		Listen:   "0.0.0.0:7070",          // UDP
//		Network:  dag.NetworkIDFromName("main"),
//		Peers:    []gossip.Peer{{Key: k1, Addr: "10.0.0.2:7070"}},
//		Log:      log,
//		Handler:  h,                       // the node
//	})
//	if err != nil { ... }
//	go func() { errc <- t.Run(ctx) }()    // until ctx ends; waits for its goroutines
//
//	// After each commit: relay what became valid, once, to all but its sender.
//	t.Broadcast(raws, from)
//	// A child arrived before its parents: ask the peer that sent it.
//	t.RequestIDs(from, missing)            // answers come in through Handler.Messages
//	// Handler.Connected(p) was called: catch up on p's log, page by page.
//	for pos, done := last[p], false; !done; {
//		page, err := t.Sync(ctx, p, pos, 4096)
//		if err != nil { break }          // retry later
//		// Entry points first: the parents p no longer holds.
//		takeEntryPoints(page.EntryPoints); ingest(page.Raws)
//		pos, done = page.Next, page.Done
//	}
//	// A peer sent invalid messages:
//	t.Disconnect(p, time.Minute)
//
// Handler's methods are called from each peer's reading goroutine: see
// Handler for the concurrency contract and the backpressure it gives.
//
// # Connections
//
// Run dials every configured peer and keeps it connected: after a failed
// attempt it waits MinBackoff, doubling to MaxBackoff, each wait drawn with
// jitter from [d/2, d); after a connection that was up ends it redials
// after about MinBackoff (plus the yield below). It accepts connections
// from configured peers, or from anyone if Config.Open, refusing others in
// the TLS handshake. After
// TLS both sides send Hello (version, network, key) on the connection's one
// bidirectional stream; a mismatch closes the connection with a QUIC
// application error code (CloseCode), so both sides log the same typed
// reason (*CloseError, errors.Is with ErrNetworkMismatch and so on), and
// PeerStats.LastError keeps it.
//
// # Connections per pair
//
// A dialler does not dial a peer while any connection to it is up, in
// either direction, and of two nodes that list each other the one with the
// larger key (bytewise) waits about half a second before dialling, at
// start and after a connection ends, so the other's dial usually comes
// first and the pair shares one connection. If both dials race anyway, the
// pair ends up with two, and both are kept (closing one would lose what was
// already written on it): each side reads both and sends on the newer, and
// once either ends the pair is back to one. The same holds when a peer
// redials while this node still holds its old connection; that one then
// dies by idle timeout or, if the peer restarted, at once: the stateless
// reset key is derived from the identity, so the peer's new process resets
// the old connection on its first packet. A third connection closes the
// oldest (CodeDuplicate).
//
// # Junk at the port
//
// The listening port is open to anyone, and UDP source addresses can be
// spoofed, so the transport keeps no state for a datagram until its sender
// has shown it can receive at its address. Every connection attempt first
// gets a QUIC Retry (RFC 9000, 8.1.2): a token, sealed with a key of this
// process, that the dialler must echo; quic-go's dialler does so by itself,
// at the cost of one round trip per connect. Junk (random bytes, or
// Initials that look well-formed) gets a Retry, a stateless reset or
// nothing, and is dropped when quic-go's fixed queues are full; it creates
// no connection and no goroutine. An attempt that echoes its token takes
// one of Config.MaxHandshakes slots until its Hello exchange ends, or is
// refused with CONNECTION_REFUSED when none is free; its QUIC handshake is
// abandoned after Config.HandshakeTimeout without a packet, or twice that
// in all, and its Hello must follow within HandshakeTimeout. A key that
// is not a peer (unless Open) is refused when its certificate arrives,
// the first moment TLS 1.3 shows the client's identity (Transport.Handshakes
// reports the counts).
//
// # Backpressure
//
// Each peer has a bounded send queue (Config.SendQueue frames and
// Config.SendQueueBytes) drained by one writer goroutine, many frames per
// flush. Broadcast, Send and RequestIDs never block: a batch that does not
// fit is dropped whole for that peer and counted (PeerStats), and the other
// peers are not affected. Dropped messages are recovered the way any gap
// is: the receiver requests the missing parents of what it gets, and
// catches up with Sync when it (re)connects. A peer that accepts no data
// for Config.WriteTimeout is disconnected (CodeStalled).
//
// # Caveats
//
//   - Everything is in memory per connection: at most SendQueueBytes of
//     queued frames per peer, plus QUIC's flow-control windows.
//   - Unknown frame types are skipped (for later versions); every known
//     frame is decoded strictly and a bad one closes the connection.
//   - Dropped frames are not reported to the peer; the node's catch-up is
//     what repairs them.
package gossip
