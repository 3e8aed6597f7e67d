package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// newGetCmd is `weft get ID`: print a message as JSON, or its raw bytes;
// `weft get messages` lists messages by time (query.go).
func newGetCmd() *cobra.Command {
	var (
		node    string
		raw     bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get [--raw] ID",
		Short: "Print a message as JSON, or its canonical encoding with --raw",
		Long: `Get asks --node for the message ID and prints it as indented JSON: its fields
(payload in base64) and what the node knows of it (position, confirmation,
children). With --raw it writes the message's canonical encoding, bytes as
they are, to standard output. The client checks either against ID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := dag.ParseID(args[0])
			if err != nil {
				return usagef("get: %q is not a message id (64 hex characters)", args[0])
			}
			c, err := nodeClient(node)
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			if raw {
				b, err := c.Raw(ctx, id)
				if err != nil {
					return explainGet(err, id, timeout)
				}
				_, err = out.Write(b)
				return err
			}
			info, err := c.Get(ctx, id)
			if err != nil {
				return explainGet(err, id, timeout)
			}
			b, err := json.MarshalIndent(info, "", "  ")
			if err != nil {
				return fmt.Errorf("get: %w", err)
			}
			_, err = fmt.Fprintf(out, "%s\n", b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", defaultNode, "the node's API `URL`")
	f.BoolVar(&raw, "raw", false, "write the canonical encoding instead of JSON")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long (0: never)")
	cmd.AddCommand(newGetMessagesCmd())
	return cmd
}

func explainGet(err error, id dag.ID, timeout time.Duration) error {
	if client.IsCode(err, client.CodeNotFound) {
		return &cliError{fmt.Sprintf("the node has no message %s", id), err}
	}
	return explain(err, "getting message "+id.String(), "node refused", timeout)
}
