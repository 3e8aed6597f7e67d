package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// outOptions are the flags of send that write a message to a file instead
// of submitting it (--out), and that build it without asking the node
// (--parents with --difficulty, and --min-timestamp and --network).
type outOptions struct {
	out          string
	parents      []string
	minTimestamp int64
	difficulty   int
	network      string
}

func (o *outOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "write the message's bytes to `FILE` instead of submitting it; it prints the id")
	f.StringSliceVar(&o.parents, "parents", nil, "build without asking the node for tips: the two parents, `ID,ID` (needs --difficulty)")
	f.Int64Var(&o.minTimestamp, "min-timestamp", 0, "with --parents: the lowest timestamp, unix `NANOSECONDS` (the tips' min_timestamp)")
	f.IntVar(&o.difficulty, "difficulty", 0, "with --parents: the proof of work's leading zero `BITS` (the tips' difficulty)")
	f.StringVar(&o.network, "network", "weft-devnet", "with --parents: the network's `NAME`")
	cmd.MarkFlagsMutuallyExclusive("out", "wait")
	cmd.MarkFlagsMutuallyExclusive("out", "remote-pow")
	cmd.MarkFlagsMutuallyExclusive("parents", "remote-pow")
	cmd.MarkFlagsRequiredTogether("parents", "difficulty")
}

// offline reports whether send builds the message without the node.
func (o *outOptions) offline() bool { return len(o.parents) > 0 }

// check refuses the offline flags without --parents, and bad values.
func (o *outOptions) check(cmd *cobra.Command) error {
	if !o.offline() {
		for _, name := range []string{"min-timestamp", "network"} {
			if cmd.Flags().Changed(name) {
				return usagef("send: --%s needs --parents: without them the node says it", name)
			}
		}
		return nil
	}
	if len(o.parents) != 2 {
		return usagef("send: --parents takes two ids, ID,ID (the same one twice for a young network), got %d", len(o.parents))
	}
	for _, p := range o.parents {
		if _, err := dag.ParseID(p); err != nil {
			return usagef("send: --parents: %q is not a message id (64 hex characters)", p)
		}
	}
	if o.difficulty < 0 || o.difficulty > pow.MaxDifficulty {
		return usagef("send: --difficulty %d: want 0..%d", o.difficulty, pow.MaxDifficulty)
	}
	if o.network == "" {
		return usagef("send: --network is empty")
	}
	return nil
}

// build builds, signs and solves a message carrying payload from the
// offline flags, as client.Device.Build does from the node's tips: its
// sequence number is the wall clock in unix nanoseconds, its timestamp the
// later of now and --min-timestamp.
func (o *outOptions) build(ctx context.Context, key ed25519.PrivateKey, payload []byte) (*dag.Message, error) {
	if len(payload) > dag.MaxPayload {
		return nil, fmt.Errorf("send: %w: %d bytes, the encoding carries at most %d", dag.ErrTooLarge, len(payload), dag.MaxPayload)
	}
	now := time.Now().UnixNano()
	m := &dag.Message{
		Version:   dag.Version,
		Network:   dag.NetworkIDFromName(o.network),
		Seq:       uint64(now),
		Timestamp: max(now, o.minTimestamp),
		Payload:   bytes.Clone(payload),
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	for i, p := range o.parents {
		m.Parents[i], _ = dag.ParseID(p) // check parsed them
	}
	m.Sign(key)
	n, err := pow.Solve(ctx, bytes.Clone(m.Bytes()), o.difficulty, 0)
	if err != nil {
		return nil, fmt.Errorf("send: solving the proof of work: %w", err)
	}
	m.SetNonce(n)
	return m, nil
}

// write writes m's bytes to --out and prints its id to out.
func (o *outOptions) write(out io.Writer, m *dag.Message) error {
	if err := os.WriteFile(o.out, m.Bytes(), 0o644); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	_, err := fmt.Fprintln(out, m.ID())
	return err
}
