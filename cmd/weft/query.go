package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// rangeFlags are the flags that select messages by time: --device, --from,
// --to and --confirmed, shared by `weft get messages` and `weft export`.
type rangeFlags struct {
	device, from, to string
	confirmed        bool
}

func (rf *rangeFlags) add(f *pflag.FlagSet) {
	f.StringVar(&rf.device, "device", "", "only this device's messages (its public `KEY`, 64 hex characters); default every device")
	f.StringVar(&rf.from, "from", "", "from this `TIME` on, inclusive: RFC 3339 (2026-01-02T15:04:05Z) or Unix nanoseconds; default the start")
	f.StringVar(&rf.to, "to", "", "up to this `TIME`, exclusive; default no end")
	f.BoolVar(&rf.confirmed, "confirmed", false, "only confirmed messages")
}

// timeRange returns the range the flags select, or a usage error.
func (rf *rangeFlags) timeRange() (client.TimeRange, error) {
	r := client.TimeRange{Confirmed: rf.confirmed}
	if rf.device != "" {
		id, err := dag.ParseID(rf.device)
		if err != nil {
			return r, usagef("--device %q is not a public key (64 hex characters)", rf.device)
		}
		k := dag.PublicKey(id)
		r.Device = &k
	}
	var err error
	if rf.from != "" {
		if r.From, err = client.ParseTime(rf.from); err != nil {
			return r, usagef("--from: %v", err)
		}
	}
	if rf.to != "" {
		if r.To, err = client.ParseTime(rf.to); err != nil {
			return r, usagef("--to: %v", err)
		}
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return r, usagef("--from must be before --to (the range is [from, to))")
	}
	return r, nil
}

// withTimeout returns ctx bounded by timeout, unless it is 0.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return ctx, func() {}
}

// newGetMessagesCmd is `weft get messages`: list messages by time.
func newGetMessagesCmd() *cobra.Command {
	var (
		node    string
		rf      rangeFlags
		max     int
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "messages [--device KEY] [--from TIME] [--to TIME] [--confirmed]",
		Short: "List messages whose timestamp is in a range, oldest first, one JSON object a line",
		Long: `Get messages asks --node for the messages whose timestamp (the one their device
set) is in [--from, --to): one device's with --device, every device's without,
only the confirmed ones with --confirmed. It follows the node's pages to the end
of the range (or --max messages) and prints each message as one line of JSON, in
the API's form, oldest first (ties by position in the node's log). For large
ranges, weft export writes NDJSON or CSV faster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rf.timeRange()
			if err != nil {
				return err
			}
			if max < 0 {
				return usagef("--max %d is negative", max)
			}
			c, err := nodeClient(node)
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			n, cursor := 0, ""
			for {
				page, err := c.Messages(ctx, r, cursor, 0)
				if err != nil {
					return explain(err, "listing messages", "node refused", timeout)
				}
				for _, m := range page.Messages {
					if max > 0 && n == max {
						return nil
					}
					b, err := json.Marshal(m)
					if err != nil {
						return fmt.Errorf("get messages: %w", err)
					}
					if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
						return err
					}
					n++
				}
				if page.NextCursor == "" {
					return nil
				}
				cursor = page.NextCursor
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", defaultNode, "the node's API `URL`")
	rf.add(f)
	f.IntVar(&max, "max", 0, "print at most `N` messages (0: all of the range)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long (0: never)")
	return cmd
}
