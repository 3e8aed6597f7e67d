package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
)

// newFollowCmd is `weft follow`: the node's confirmed messages as NDJSON,
// resumable.
func newFollowCmd() *cobra.Command {
	var (
		node, state     string
		from            int64
		issuers, tags   []string
		payload, always bool
	)
	cmd := &cobra.Command{
		Use:   "follow [--from N | --state FILE] [--issuer KEY]... [--tag TAG]... [--payload]",
		Short: "Write the node's confirmed messages to standard output, one JSON line each",
		Long: `Follow reads the confirmed events of --node (GET /api/v1/events?kind=confirmed) and
writes each as a line of JSON, the event's data, in the node's confirmation order, until
interrupted. It reconnects by itself, resuming after the last event it wrote, so a line is
never missed and never repeated while it runs.

--from N starts at place N of the node's confirmation order (0: everything it ever confirmed);
without it, at the next confirmation. --state FILE keeps the place after the last line written
(updated after the lines are written, at most every second while they come, and at the end): a
follow started again with the same file goes on from there, at least once across restarts of
this command and of the node (a follow killed, not interrupted, repeats at most its last
second). --issuer, --tag and --payload select as the API's parameters do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := nodeClient(node)
			if err != nil {
				return err
			}
			o := client.FeedOptions{Payload: payload, Tags: tags}
			for _, s := range issuers {
				k, err := parseKey(s)
				if err != nil {
					return usagef("--issuer %q: %v", s, err)
				}
				o.Issuers = append(o.Issuers, k)
			}
			ctx := cmd.Context()
			start, err := followStart(ctx, c, state, from)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout() // a line at a time: a reader sees each event at once
			next, saved, lastSave := start, start, time.Now()
			save := func() error {
				if state == "" || next == saved {
					return nil
				}
				saved, lastSave = next, time.Now()
				return writeState(state, next)
			}
			var line []byte
			err = c.FollowConfirmed(ctx, o, start, func(e *client.ConfirmedEvent) error {
				line = append(wire.AppendConfirmedJSON(line[:0], e), '\n')
				if _, err := out.Write(line); err != nil {
					return err
				}
				next = e.Confirmation + 1
				if always || time.Since(lastSave) >= time.Second {
					return save()
				}
				return nil
			})
			serr := save()
			if errors.Is(err, context.Canceled) { // interrupted: a clean end
				err = serr
			}
			if err == nil {
				return nil
			}
			return explain(err, "following the node's confirmations", "node refused", 0)
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", defaultNode, "the node's API `URL`")
	f.Int64Var(&from, "from", -1, "start at this place of the node's confirmation order (default: the next one)")
	f.StringVar(&state, "state", "", "`FILE` that keeps the place to resume from")
	f.StringSliceVar(&issuers, "issuer", nil, "only this device's messages (hex key), repeatable")
	f.StringSliceVar(&tags, "tag", nil, "only the messages of devices with this registry tag, repeatable")
	f.BoolVar(&payload, "payload", false, "include the payloads")
	f.BoolVar(&always, "sync-every-line", false, "update --state after every line, not every second")
	f.MarkHidden("sync-every-line")
	return cmd
}

// followStart returns where a follow begins: the place in the state file,
// if it exists, else from, else the node's next confirmation.
func followStart(ctx context.Context, c *client.Client, state string, from int64) (uint64, error) {
	if state != "" {
		b, err := os.ReadFile(state)
		switch {
		case err == nil:
			n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return 0, usagef("--state %s: %q is not a place of the confirmation order", state, strings.TrimSpace(string(b)))
			}
			return n, nil
		case !errors.Is(err, os.ErrNotExist):
			return 0, err
		}
	}
	if from >= 0 {
		return uint64(from), nil
	}
	in, err := c.Info(ctx)
	if err != nil {
		return 0, explain(err, "asking the node where its confirmations are", "node refused", 0)
	}
	return in.Confirmations, nil
}

// writeState replaces the state file with next, atomically: a crash leaves
// the old place or the new one.
func writeState(path string, next uint64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".follow-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", next); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
